//! The two gRPC services over [`Db`]: `hold.Hold` as the plugin's `grpc/service.rs` answers
//! (errors as `Status::internal` with the plugin's texts, Track as its relay task) and `cln.Node`
//! as cln-grpc's `server.rs` answers (a JSON-RPC error as `Status::unknown("Error calling method
//! X: RpcError { … }")`).

use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::Shared;
use crate::proto::{cln, hold};
use crate::state::{ClnStatus, HoldInvoice, HoldState, PayStatus, PeerChannel, RpcError};

fn hold_state(state: HoldState) -> i32 {
    match state {
        HoldState::Unpaid => hold::InvoiceState::Unpaid,
        HoldState::Accepted => hold::InvoiceState::Accepted,
        HoldState::Paid => hold::InvoiceState::Paid,
        HoldState::Cancelled => hold::InvoiceState::Cancelled,
    }
    .into()
}

fn hold_message(invoice: &HoldInvoice) -> hold::Invoice {
    hold::Invoice {
        id: invoice.id,
        payment_hash: invoice.payment_hash.to_vec(),
        preimage: invoice.preimage.map(|p| p.to_vec()),
        invoice: invoice.bolt11.clone(),
        state: hold_state(invoice.state),
        created_at: invoice.created_at,
        settled_at: invoice.settled_at,
        htlcs: invoice
            .htlcs
            .iter()
            .map(|h| hold::Htlc {
                id: h.id,
                state: hold_state(h.state),
                scid: h.scid.clone(),
                channel_id: h.channel_id,
                msat: h.msat,
                created_at: h.created_at,
                cltv_expiry: Some(h.cltv_expiry),
            })
            .collect(),
        min_cltv_expiry: invoice.min_cltv,
    }
}

/// The plugin's `transform_route_hints` (grpc/transformers.rs): each hop as given, the fees and
/// CLTV delta cast to the BOLT11 widths, a public key that does not parse refused.
fn route_hints(hints: Vec<hold::RoutingHint>) -> Result<Vec<lightning_invoice::RouteHint>, Status> {
    use lightning_invoice::{RouteHint, RouteHintHop, RoutingFees};
    hints
        .into_iter()
        .map(|hint| {
            hint.hops
                .into_iter()
                .map(|hop| {
                    Ok(RouteHintHop {
                        src_node_id: bitcoin::secp256k1::PublicKey::from_slice(&hop.public_key)
                            .map_err(|e| {
                                Status::invalid_argument(format!("invalid routing hint: {e}"))
                            })?,
                        short_channel_id: hop.short_channel_id,
                        fees: RoutingFees {
                            base_msat: hop.base_fee as u32,
                            proportional_millionths: hop.ppm_fee as u32,
                        },
                        cltv_expiry_delta: hop.cltv_expiry_delta as u16,
                        htlc_minimum_msat: None,
                        htlc_maximum_msat: None,
                    })
                })
                .collect::<Result<Vec<_>, Status>>()
                .map(RouteHint)
        })
        .collect()
}

fn channel_message(c: &PeerChannel) -> cln::ListpeerchannelsChannels {
    let amount = |msat: u64| Some(cln::Amount { msat });
    let policy_local = cln::ListpeerchannelsChannelsUpdatesLocal {
        htlc_minimum_msat: amount(c.local.htlc_minimum_msat),
        htlc_maximum_msat: amount(c.local.htlc_maximum_msat),
        cltv_expiry_delta: c.local.cltv_expiry_delta,
        fee_base_msat: amount(c.local.fee_base_msat),
        fee_proportional_millionths: c.local.fee_proportional_millionths,
    };
    let policy_remote = c
        .remote
        .map(|r| cln::ListpeerchannelsChannelsUpdatesRemote {
            htlc_minimum_msat: amount(r.htlc_minimum_msat),
            htlc_maximum_msat: amount(r.htlc_maximum_msat),
            cltv_expiry_delta: r.cltv_expiry_delta,
            fee_base_msat: amount(r.fee_base_msat),
            fee_proportional_millionths: r.fee_proportional_millionths,
        });
    // static_remotekey (bit 12), anchors (bit 22), and scid_alias (bit 46) when set.
    let mut bits = vec![12, 22];
    let mut names = vec![
        cln::ChannelTypeName::StaticRemotekeyEven.into(),
        cln::ChannelTypeName::AnchorsEven.into(),
    ];
    if c.scid_alias {
        bits.push(46);
        names.push(cln::ChannelTypeName::ScidAliasEven.into());
    }
    cln::ListpeerchannelsChannels {
        peer_id: c.peer_id.serialize().to_vec(),
        peer_connected: c.peer_connected,
        state: c.state.into(),
        channel_type: Some(cln::ListpeerchannelsChannelsChannelType { bits, names }),
        owner: c.peer_connected.then(|| "channeld".to_owned()),
        short_channel_id: c.short_channel_id.clone(),
        channel_id: Some(c.channel_id.to_vec()),
        private: Some(c.private),
        opener: cln::ChannelSide::Local.into(),
        to_us_msat: amount(c.to_us_msat),
        total_msat: amount(c.total_msat),
        // The channel's top-level fees are our own policy.
        fee_base_msat: amount(c.local.fee_base_msat),
        fee_proportional_millionths: Some(c.local.fee_proportional_millionths),
        spendable_msat: amount(c.to_us_msat),
        receivable_msat: amount(c.receivable_msat),
        alias: (c.alias_local.is_some() || c.alias_remote.is_some()).then(|| {
            cln::ListpeerchannelsChannelsAlias {
                local: c.alias_local.clone(),
                remote: c.alias_remote.clone(),
            }
        }),
        updates: Some(cln::ListpeerchannelsChannelsUpdates {
            local: Some(policy_local),
            remote: policy_remote,
        }),
        ..Default::default()
    }
}

pub struct HoldService(pub Arc<Shared>);

#[tonic::async_trait]
impl hold::hold_server::Hold for HoldService {
    async fn get_info(
        &self,
        _: Request<hold::GetInfoRequest>,
    ) -> Result<Response<hold::GetInfoResponse>, Status> {
        self.0.log("hold.GetInfo");
        Ok(Response::new(hold::GetInfoResponse {
            version: "0.3.3-fake".to_owned(),
        }))
    }

    async fn invoice(
        &self,
        request: Request<hold::InvoiceRequest>,
    ) -> Result<Response<hold::InvoiceResponse>, Status> {
        self.0.log("hold.Invoice");
        let r = request.into_inner();
        let hints = route_hints(r.routing_hints)?;
        let memo = match r.description {
            Some(hold::invoice_request::Description::Memo(memo)) => memo,
            _ => String::new(),
        };
        let bolt11 = self
            .0
            .db()
            .hold_create(
                &r.payment_hash,
                r.amount_msat,
                &memo,
                r.expiry,
                r.min_final_cltv_expiry,
                hints,
            )
            .map_err(Status::internal)?;
        Ok(Response::new(hold::InvoiceResponse { bolt11 }))
    }

    async fn inject(
        &self,
        _: Request<hold::InjectRequest>,
    ) -> Result<Response<hold::InjectResponse>, Status> {
        Err(Status::unimplemented("FakeCln does not model Inject"))
    }

    async fn list(
        &self,
        request: Request<hold::ListRequest>,
    ) -> Result<Response<hold::ListResponse>, Status> {
        self.0.log("hold.List");
        let db = self.0.db();
        let invoices = match request.into_inner().constraint {
            Some(hold::list_request::Constraint::PaymentHash(hash)) => db
                .hold_invoice(&hash)
                .map(hold_message)
                .into_iter()
                .collect(),
            Some(hold::list_request::Constraint::Pagination(page)) => db
                .hold
                .iter()
                .filter(|i| i.id >= page.index_start)
                .take(usize::try_from(page.limit).unwrap_or(usize::MAX))
                .map(hold_message)
                .collect(),
            None => db.hold.iter().map(hold_message).collect(),
        };
        Ok(Response::new(hold::ListResponse { invoices }))
    }

    async fn settle(
        &self,
        request: Request<hold::SettleRequest>,
    ) -> Result<Response<hold::SettleResponse>, Status> {
        self.0.log("hold.Settle");
        let update = self
            .0
            .db()
            .hold_settle(&request.into_inner().payment_preimage)
            .map_err(Status::internal)?;
        if let Some(update) = update {
            self.0.announce(update);
        }
        Ok(Response::new(hold::SettleResponse {}))
    }

    async fn cancel(
        &self,
        request: Request<hold::CancelRequest>,
    ) -> Result<Response<hold::CancelResponse>, Status> {
        self.0.log("hold.Cancel");
        let update = self
            .0
            .db()
            .hold_cancel(&request.into_inner().payment_hash)
            .map_err(Status::internal)?;
        self.0.announce(update);
        Ok(Response::new(hold::CancelResponse {}))
    }

    async fn clean(
        &self,
        _: Request<hold::CleanRequest>,
    ) -> Result<Response<hold::CleanResponse>, Status> {
        Err(Status::unimplemented("FakeCln does not model Clean"))
    }

    type TrackStream = Pin<Box<dyn Stream<Item = Result<hold::TrackResponse, Status>> + Send>>;

    /// As the plugin: the current state first (nothing for an unknown hash), then every change
    /// but a repeat of the first, ending after a final one. A stream that starts final never
    /// ends by itself.
    async fn track(
        &self,
        request: Request<hold::TrackRequest>,
    ) -> Result<Response<Self::TrackStream>, Status> {
        self.0.log("hold.Track");
        let hash = request.into_inner().payment_hash;
        let (tx, rx) = mpsc::channel(16);
        let mut updates = self.0.changes.subscribe();
        let initial = self.0.db().hold_invoice(&hash).map(|i| i.state);
        if let Some(state) = initial {
            let _ = tx
                .send(Ok(hold::TrackResponse {
                    state: hold_state(state),
                }))
                .await;
        }
        tokio::spawn(async move {
            while let Ok(update) = updates.recv().await {
                if update.payment_hash[..] != hash[..] || Some(update.state) == initial {
                    continue;
                }
                let message = hold::TrackResponse {
                    state: hold_state(update.state),
                };
                if tx.send(Ok(message)).await.is_err() || update.state.is_final() {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    type TrackAllStream =
        Pin<Box<dyn Stream<Item = Result<hold::TrackAllResponse, Status>> + Send>>;

    async fn track_all(
        &self,
        _: Request<hold::TrackAllRequest>,
    ) -> Result<Response<Self::TrackAllStream>, Status> {
        Err(Status::unimplemented("FakeCln does not model TrackAll"))
    }

    type OnionMessagesStream =
        Pin<Box<dyn Stream<Item = Result<hold::OnionMessage, Status>> + Send>>;

    async fn onion_messages(
        &self,
        _: Request<tonic::Streaming<hold::OnionMessageResponse>>,
    ) -> Result<Response<Self::OnionMessagesStream>, Status> {
        Err(Status::unimplemented(
            "FakeCln does not model OnionMessages",
        ))
    }
}

/// cln-grpc's rendering of a failed JSON-RPC call.
fn rpc_status(method: &str, e: RpcError) -> Status {
    Status::unknown(format!(
        "Error calling method {method}: RpcError {{ code: Some({}), message: {:?}, data: None }}",
        e.code, e.message
    ))
}

pub struct NodeService(pub Arc<Shared>);

#[tonic::async_trait]
impl cln::node_server::Node for NodeService {
    async fn getinfo(
        &self,
        _: Request<cln::GetinfoRequest>,
    ) -> Result<Response<cln::GetinfoResponse>, Status> {
        self.0.log("cln.Getinfo");
        let db = self.0.db();
        Ok(Response::new(cln::GetinfoResponse {
            id: db.pubkey().serialize().to_vec(),
            alias: "fake-cln".to_owned(),
            version: "v26.06-fake".to_owned(),
            blockheight: db.height,
            network: db.network.clone(),
            fees_collected_msat: Some(cln::Amount { msat: 0 }),
            ..Default::default()
        }))
    }

    async fn invoice(
        &self,
        request: Request<cln::InvoiceRequest>,
    ) -> Result<Response<cln::InvoiceResponse>, Status> {
        self.0.log("cln.Invoice");
        let r = request.into_inner();
        let invoice = self
            .0
            .db()
            .cln_invoice(&r)
            .map_err(|e| rpc_status("Invoice", e))?;
        Ok(Response::new(cln::InvoiceResponse {
            bolt11: invoice.bolt11,
            payment_hash: invoice.payment_hash.to_vec(),
            payment_secret: vec![0; 32],
            expires_at: invoice.expires_at,
            created_index: invoice.created_index,
            ..Default::default()
        }))
    }

    async fn list_invoices(
        &self,
        request: Request<cln::ListinvoicesRequest>,
    ) -> Result<Response<cln::ListinvoicesResponse>, Status> {
        self.0.log("cln.ListInvoices");
        use cln::listinvoices_invoices::ListinvoicesInvoicesStatus as S;
        let r = request.into_inner();
        let db = self.0.db();
        let invoices = db
            .cln
            .iter()
            .filter(|i| {
                r.payment_hash
                    .as_deref()
                    .is_none_or(|h| h == i.payment_hash)
            })
            .filter(|i| r.label.as_deref().is_none_or(|l| l == i.label))
            .map(|i| {
                let status = db.cln_status(i);
                cln::ListinvoicesInvoices {
                    label: i.label.clone(),
                    description: Some(i.description.clone()),
                    payment_hash: i.payment_hash.to_vec(),
                    status: match status {
                        ClnStatus::Unpaid => S::Unpaid,
                        ClnStatus::Paid => S::Paid,
                        ClnStatus::Expired => S::Expired,
                    }
                    .into(),
                    expires_at: i.expires_at,
                    amount_msat: Some(cln::Amount {
                        msat: i.amount_msat,
                    }),
                    bolt11: Some(i.bolt11.clone()),
                    amount_received_msat: i.paid_at.map(|_| cln::Amount {
                        msat: i.amount_msat,
                    }),
                    paid_at: i.paid_at,
                    payment_preimage: i.paid_at.map(|_| i.preimage.to_vec()),
                    created_index: i.created_index,
                    ..Default::default()
                }
            })
            .collect();
        Ok(Response::new(cln::ListinvoicesResponse { invoices }))
    }

    /// Filtered by peer, by short channel id (the real one or an alias) or by channel id.
    async fn list_peer_channels(
        &self,
        request: Request<cln::ListpeerchannelsRequest>,
    ) -> Result<Response<cln::ListpeerchannelsResponse>, Status> {
        self.0.log("cln.ListPeerChannels");
        let r = request.into_inner();
        let mut db = self.0.db();
        let channels = db
            .channels
            .iter()
            .filter(|c| r.id.as_deref().is_none_or(|id| id == c.peer_id.serialize()))
            .filter(|c| {
                r.short_channel_id.as_ref().is_none_or(|scid| {
                    [&c.short_channel_id, &c.alias_local, &c.alias_remote]
                        .iter()
                        .any(|id| id.as_ref() == Some(scid))
                })
            })
            .filter(|c| r.channel_id.as_deref().is_none_or(|id| id == c.channel_id))
            .map(channel_message)
            .collect();
        if let Some(next) = db.channels_after_listing.take() {
            db.channels = next;
        }
        Ok(Response::new(cln::ListpeerchannelsResponse { channels }))
    }

    async fn list_pays(
        &self,
        request: Request<cln::ListpaysRequest>,
    ) -> Result<Response<cln::ListpaysResponse>, Status> {
        self.0.log("cln.ListPays");
        use cln::listpays_pays::ListpaysPaysStatus as S;
        let r = request.into_inner();
        let pays = self
            .0
            .db()
            .pays
            .iter()
            .filter(|p| {
                r.payment_hash
                    .as_deref()
                    .is_none_or(|h| h == p.payment_hash)
            })
            .map(|p| cln::ListpaysPays {
                payment_hash: p.payment_hash.to_vec(),
                status: match p.status {
                    PayStatus::Pending => S::Pending,
                    PayStatus::Failed => S::Failed,
                    PayStatus::Complete => S::Complete,
                }
                .into(),
                created_at: p.created_at,
                bolt11: Some(p.bolt11.clone()),
                amount_msat: Some(cln::Amount {
                    msat: p.amount_msat,
                }),
                amount_sent_msat: Some(cln::Amount {
                    msat: p.amount_sent_msat,
                }),
                preimage: p.preimage.map(|x| x.to_vec()),
                ..Default::default()
            })
            .collect();
        Ok(Response::new(cln::ListpaysResponse { pays }))
    }

    async fn xpay(
        &self,
        request: Request<cln::XpayRequest>,
    ) -> Result<Response<cln::XpayResponse>, Status> {
        self.0.log("cln.Xpay");
        let r = request.into_inner();
        let paid = self
            .0
            .db()
            .xpay(&r.invstring, r.maxfee.map(|a| a.msat))
            .map_err(|e| rpc_status("Xpay", e))?;
        let Some(pay) = paid else {
            // Stuck in flight: xpay does not answer while the HTLCs are out.
            std::future::pending::<()>().await;
            return Err(Status::internal("unreachable"));
        };
        Ok(Response::new(cln::XpayResponse {
            payment_preimage: pay.preimage.map(|p| p.to_vec()).unwrap_or_default(),
            failed_parts: 0,
            successful_parts: 1,
            amount_msat: Some(cln::Amount {
                msat: pay.amount_msat,
            }),
            amount_sent_msat: Some(cln::Amount {
                msat: pay.amount_sent_msat,
            }),
        }))
    }
}
