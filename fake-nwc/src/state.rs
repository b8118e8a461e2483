//! The wallet behind the double: invoices, held payments, a chain height and a clock, with the
//! rules of Alby Hub on LND (lnd's hold-invoice semantics: settle twice and cancel twice
//! succeed, a hash is never reused, a held payment is cancelled `hold_expiry_delta` blocks before
//! its HTLC expires, an unpaid invoice expires). Errors are NIP-47 codes with lnd's messages.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bitcoin::hashes::{Hash as _, sha256};
use bitcoin::secp256k1::{Secp256k1, SecretKey};
use lightning_invoice::{Bolt11Invoice, Currency, InvoiceBuilder, PaymentSecret};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldState {
    Pending,
    /// Held: the HTLC expires at this height.
    Accepted {
        htlc_expiry: u32,
    },
    Settled,
    Canceled,
}

#[derive(Clone, Debug)]
pub struct Invoice {
    pub hash: [u8; 32],
    pub preimage: Option<[u8; 32]>,
    pub bolt11: String,
    pub description: String,
    pub amount_msat: u64,
    pub created_at: u64,
    pub expires_at: u64,
    pub cltv: u32,
    pub state: HoldState,
    pub settled_at: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct Payment {
    pub hash: [u8; 32],
    pub bolt11: String,
    pub amount_msat: u64,
    pub preimage: [u8; 32],
    pub fee_msat: u64,
    pub created_at: u64,
}

/// A NIP-47 error: `(code, message)`.
pub type WalletError = (&'static str, String);

pub struct Wallet {
    pub network: String,
    key: SecretKey,
    pub height: u32,
    pub hold_expiry_delta: u32,
    time_offset: Duration,
    pub invoices: Vec<Invoice>,
    pub payments: Vec<Payment>,
    pub fee_msat: u64,
}

/// What a change means for the client: a notification to send.
pub enum Notice {
    HoldAccepted(Value),
    Received(Value),
}

fn not_found() -> WalletError {
    ("NOT_FOUND", "unable to locate invoice".into())
}

impl Wallet {
    pub fn new(network: &str, height: u32, hold_expiry_delta: u32) -> Self {
        let key = loop {
            if let Ok(key) = SecretKey::from_slice(&rand::random::<[u8; 32]>()) {
                break key;
            }
        };
        Self {
            network: network.to_owned(),
            key,
            height,
            hold_expiry_delta,
            time_offset: Duration::ZERO,
            invoices: Vec::new(),
            payments: Vec::new(),
            fee_msat: 1_000,
        }
    }

    pub fn now(&self) -> Duration {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .saturating_add(self.time_offset)
    }

    pub fn advance_time(&mut self, by: Duration) {
        self.time_offset += by;
    }

    fn unix(&self) -> u64 {
        self.now().as_secs()
    }

    pub fn pubkey_hex(&self) -> String {
        self.key.public_key(&Secp256k1::new()).to_string()
    }

    fn currency(&self) -> Currency {
        match self.network.as_str() {
            "mainnet" => Currency::Bitcoin,
            "testnet" | "testnet4" => Currency::BitcoinTestnet,
            "signet" => Currency::Signet,
            _ => Currency::Regtest,
        }
    }

    pub fn invoice(&self, hash: &[u8; 32]) -> Option<&Invoice> {
        self.invoices.iter().find(|i| &i.hash == hash)
    }

    fn invoice_mut(&mut self, hash: &[u8; 32]) -> Option<&mut Invoice> {
        self.invoices.iter_mut().find(|i| &i.hash == hash)
    }

    /// An unpaid invoice past its expiry is cancelled (lnd's invoice expiry watcher).
    fn expire(&mut self) {
        let now = self.unix();
        for i in &mut self.invoices {
            if i.state == HoldState::Pending && now >= i.expires_at {
                i.state = HoldState::Canceled;
            }
        }
    }

    pub fn get_info(&self, methods: &[&str], notifications: &[&str]) -> Value {
        json!({
            "alias": "fake-nwc",
            "color": "#3399ff",
            "pubkey": self.pubkey_hex(),
            "network": self.network,
            "block_height": self.height,
            "block_hash": "00".repeat(32),
            "methods": methods,
            "notifications": notifications,
        })
    }

    pub fn make_hold_invoice(&mut self, params: &Value) -> Result<Value, WalletError> {
        let amount_msat = params
            .get("amount")
            .and_then(Value::as_u64)
            .filter(|a| *a > 0)
            .ok_or(("OTHER", "amount (msat) is required".to_owned()))?;
        let hash = params
            .get("payment_hash")
            .and_then(Value::as_str)
            .and_then(hex32)
            .ok_or(("OTHER", "payment_hash must be 32 bytes of hex".to_owned()))?;
        let description = params
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let expiry = params
            .get("expiry")
            .and_then(Value::as_u64)
            .unwrap_or(86_400);
        // lnd's default final CLTV delta for invoices (80) when none is asked for.
        let cltv = params
            .get("min_cltv_expiry_delta")
            .and_then(Value::as_u64)
            .and_then(|c| u32::try_from(c).ok())
            .unwrap_or(80);
        if self.invoice(&hash).is_some() {
            return Err((
                "INTERNAL",
                "invoice with payment hash already exists".into(),
            ));
        }
        let secp = Secp256k1::new();
        let bolt11 = InvoiceBuilder::new(self.currency())
            .description(description.clone())
            .payment_hash(sha256::Hash::from_byte_array(hash))
            .payment_secret(PaymentSecret(rand::random()))
            .duration_since_epoch(self.now())
            .min_final_cltv_expiry_delta(u64::from(cltv))
            .expiry_time(Duration::from_secs(expiry))
            .amount_milli_satoshis(amount_msat)
            .build_signed(|m| secp.sign_ecdsa_recoverable(m, &self.key))
            .map_err(|e| ("INTERNAL", format!("{e}")))?
            .to_string();
        let now = self.unix();
        self.invoices.push(Invoice {
            hash,
            preimage: None,
            bolt11,
            description,
            amount_msat,
            created_at: now,
            expires_at: now + expiry,
            cltv,
            state: HoldState::Pending,
            settled_at: None,
        });
        let invoice = self.invoices.last().ok_or(("INTERNAL", String::new()))?;
        let mut result = transaction(invoice);
        if let Some(map) = result.as_object_mut() {
            // make_hold_invoice's result has no state, preimage or fees (NIP-47).
            map.remove("state");
            map.remove("preimage");
            map.remove("fees_paid");
            map.remove("settled_at");
            map.remove("settle_deadline");
        }
        Ok(result)
    }

    pub fn settle(&mut self, params: &Value) -> Result<(Value, Option<Notice>), WalletError> {
        let preimage = params
            .get("preimage")
            .and_then(Value::as_str)
            .and_then(hex32)
            .ok_or(("OTHER", "preimage must be 32 bytes of hex".to_owned()))?;
        let hash: [u8; 32] = Sha256::digest(preimage).into();
        self.expire();
        let now = self.unix();
        let invoice = self.invoice_mut(&hash).ok_or_else(not_found)?;
        match invoice.state {
            HoldState::Settled => Ok((json!({}), None)),
            HoldState::Pending => Err(("INTERNAL", "invoice still open".into())),
            HoldState::Canceled => Err(("INTERNAL", "invoice already canceled".into())),
            HoldState::Accepted { .. } => {
                invoice.state = HoldState::Settled;
                invoice.preimage = Some(preimage);
                invoice.settled_at = Some(now);
                let notice = Notice::Received(transaction(invoice));
                Ok((json!({}), Some(notice)))
            }
        }
    }

    pub fn cancel(&mut self, params: &Value) -> Result<Value, WalletError> {
        let hash = params
            .get("payment_hash")
            .and_then(Value::as_str)
            .and_then(hex32)
            .ok_or(("OTHER", "payment_hash must be 32 bytes of hex".to_owned()))?;
        let invoice = self.invoice_mut(&hash).ok_or_else(not_found)?;
        match invoice.state {
            HoldState::Settled => Err(("INTERNAL", "invoice already settled".into())),
            _ => {
                invoice.state = HoldState::Canceled;
                Ok(json!({}))
            }
        }
    }

    pub fn lookup(&mut self, params: &Value) -> Result<Value, WalletError> {
        self.expire();
        let by_invoice = params.get("invoice").and_then(Value::as_str);
        let hash = match params.get("payment_hash").and_then(Value::as_str) {
            Some(h) => {
                hex32(h).ok_or(("OTHER", "payment_hash must be 32 bytes of hex".to_owned()))?
            }
            None => {
                let bolt11 = by_invoice
                    .ok_or(("OTHER", "payment_hash or invoice is required".to_owned()))?;
                let invoice: Bolt11Invoice = bolt11
                    .trim()
                    .parse()
                    .map_err(|e| ("OTHER", format!("invalid invoice: {e:?}")))?;
                invoice.payment_hash().to_byte_array()
            }
        };
        if let Some(invoice) = self.invoice(&hash) {
            return Ok(transaction(invoice));
        }
        if let Some(payment) = self.payments.iter().find(|p| p.hash == hash) {
            return Ok(json!({
                "type": "outgoing",
                "state": "settled",
                "invoice": payment.bolt11,
                "description": "",
                "description_hash": "",
                "preimage": hex::encode(payment.preimage),
                "payment_hash": hex::encode(payment.hash),
                "amount": payment.amount_msat,
                "fees_paid": payment.fee_msat,
                "created_at": payment.created_at,
                "settled_at": payment.created_at,
            }));
        }
        Err(not_found())
    }

    /// pay_invoice: an outside invoice is "paid" at once with a made-up preimage and
    /// `fee_msat` in fees; a second payment of the same invoice is refused, as lnd does.
    pub fn pay(&mut self, params: &Value) -> Result<Value, WalletError> {
        let bolt11 = params
            .get("invoice")
            .and_then(Value::as_str)
            .ok_or(("OTHER", "invoice is required".to_owned()))?;
        let invoice: Bolt11Invoice = bolt11
            .trim()
            .parse()
            .map_err(|e| ("PAYMENT_FAILED", format!("invalid invoice: {e:?}")))?;
        let hash = invoice.payment_hash().to_byte_array();
        if self.payments.iter().any(|p| p.hash == hash) {
            return Err(("PAYMENT_FAILED", "invoice is already paid".into()));
        }
        let preimage: [u8; 32] = rand::random();
        self.payments.push(Payment {
            hash,
            bolt11: bolt11.to_owned(),
            amount_msat: invoice.amount_milli_satoshis().unwrap_or(0),
            preimage,
            fee_msat: self.fee_msat,
            created_at: self.unix(),
        });
        Ok(json!({ "preimage": hex::encode(preimage), "fees_paid": self.fee_msat }))
    }

    /// A remote payer's HTLC for the full amount reaches the wallet: the invoice is held.
    pub fn pay_request(&mut self, bolt11: &str) -> Result<([u8; 32], Notice), String> {
        let parsed: Bolt11Invoice = bolt11.trim().parse().map_err(|e| format!("{e:?}"))?;
        let hash = parsed.payment_hash().to_byte_array();
        self.expire();
        let height = self.height;
        let invoice = self
            .invoice_mut(&hash)
            .ok_or("not an invoice of this wallet")?;
        if invoice.state != HoldState::Pending {
            return Err(format!("invoice is {:?}, not payable", invoice.state));
        }
        invoice.state = HoldState::Accepted {
            htlc_expiry: height + invoice.cltv,
        };
        Ok((hash, Notice::HoldAccepted(transaction(invoice))))
    }

    /// Mines blocks; a held payment is cancelled once `height + hold_expiry_delta` reaches its
    /// HTLC expiry (lnd's hold-invoice auto-cancel).
    pub fn advance_blocks(&mut self, blocks: u32) {
        self.height += blocks;
        let (height, delta) = (self.height, self.hold_expiry_delta);
        for i in &mut self.invoices {
            if let HoldState::Accepted { htlc_expiry } = i.state
                && height + delta >= htlc_expiry
            {
                i.state = HoldState::Canceled;
            }
        }
    }
}

fn hex32(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok().map(|()| out)
}

/// A transaction object (NIP-47 `lookup_invoice` result) for an incoming invoice. Like Alby
/// Hub's, it also carries `settle_deadline` for a held hold invoice (outside the NIP's list).
pub fn transaction(i: &Invoice) -> Value {
    let state = match i.state {
        HoldState::Pending => "pending",
        HoldState::Accepted { .. } => "accepted",
        HoldState::Settled => "settled",
        // A cancelled invoice, expired or refunded: NIP-47 has "expired" for invoices only.
        HoldState::Canceled => "expired",
    };
    let mut tx = json!({
        "type": "incoming",
        "state": state,
        "invoice": i.bolt11,
        "description": i.description,
        "description_hash": "",
        "preimage": i.preimage.map(hex::encode).unwrap_or_default(),
        "payment_hash": hex::encode(i.hash),
        "amount": i.amount_msat,
        "fees_paid": 0,
        "created_at": i.created_at,
        "expires_at": i.expires_at,
    });
    if let Some(map) = tx.as_object_mut() {
        if let Some(at) = i.settled_at {
            map.insert("settled_at".into(), at.into());
        }
        if let HoldState::Accepted { htlc_expiry } = i.state {
            map.insert("settle_deadline".into(), htlc_expiry.into());
        }
    }
    tx
}
