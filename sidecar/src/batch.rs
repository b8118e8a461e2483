//! Requests answered in batches: the requests queued while the previous batch ran go into the
//! next, one call does them all (one statement, one transaction), and each caller is answered
//! with its own result once that call is done — never before. There is no coalescing timer: an
//! idle queue runs a request at once, a busy one batches by itself.
//!
//! Why: under a wave of challenges each request's own round trip (a commit's WAL flush, a
//! backend wake-up, a hand-off to a SQLite thread) costs more than the work it carries. Used by
//! the store's group commit (`store/group_commit.rs`), its per-network counts on PostgreSQL
//! (`store/count_reads.rs`) and the dev node's new invoices (`node/dev/new_invoices.rs`).

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

/// Why a request got no result of its own.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Failed {
    /// The call for the whole batch failed: none of its requests took effect.
    #[error("a batch of {rows} failed: {message}")]
    Batch { rows: usize, message: String },
    /// The runner stopped (the runtime is shutting down): the request's fate is unknown, so the
    /// caller must act on nothing.
    #[error("the batch runner has stopped")]
    Gone,
}

struct Job<In, Out> {
    input: In,
    done: oneshot::Sender<Result<Out, Failed>>,
}

/// The handle callers keep; the runner tasks end when the last handle is dropped.
pub struct Batches<In, Out> {
    jobs: mpsc::Sender<Job<In, Out>>,
}

impl<In, Out> Clone for Batches<In, Out> {
    fn clone(&self) -> Self {
        Batches {
            jobs: self.jobs.clone(),
        }
    }
}

impl<In, Out> std::fmt::Debug for Batches<In, Out> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batches").finish_non_exhaustive()
    }
}

impl<In: Send + 'static, Out: Send + 'static> Batches<In, Out> {
    /// Starts `runners` tasks on the current tokio runtime, each taking up to `max` requests at
    /// a time (holding the queue only while taking them, so another runner takes the next batch
    /// while this one is at the database). `run` gets a batch's inputs in the order they were
    /// queued and returns one result per input, in that order, or fails the whole batch.
    /// Beyond `queue` waiting requests, callers wait for room (backpressure).
    pub fn start<F, Fut, E>(runners: usize, max: usize, queue: usize, run: F) -> Self
    where
        F: Fn(Vec<In>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<Out>, E>> + Send + 'static,
        E: std::fmt::Display + 'static,
    {
        let (jobs, waiting) = mpsc::channel(queue);
        let waiting = Arc::new(Mutex::new(waiting));
        let run = Arc::new(run);
        for _ in 0..runners {
            tokio::spawn(run_batches(waiting.clone(), max, run.clone()));
        }
        Batches { jobs }
    }

    /// `input`'s result, once the call holding it is done.
    pub async fn call(&self, input: In) -> Result<Out, Failed> {
        let (done, answer) = oneshot::channel();
        self.jobs
            .send(Job { input, done })
            .await
            .map_err(|_| Failed::Gone)?;
        // The runner drops the sender only if its task died mid-batch.
        answer.await.map_err(|_| Failed::Gone)?
    }
}

async fn run_batches<In, Out, F, Fut, E>(
    waiting: Arc<Mutex<mpsc::Receiver<Job<In, Out>>>>,
    max: usize,
    run: Arc<F>,
) where
    F: Fn(Vec<In>) -> Fut,
    Fut: Future<Output = Result<Vec<Out>, E>>,
    E: std::fmt::Display,
{
    let mut batch = Vec::with_capacity(max);
    while waiting.lock().await.recv_many(&mut batch, max).await > 0 {
        let (inputs, answers): (Vec<In>, Vec<_>) =
            batch.drain(..).map(|job| (job.input, job.done)).unzip();
        let rows = inputs.len();
        let failure = match run(inputs).await {
            Ok(outs) if outs.len() == rows => {
                for (done, out) in answers.into_iter().zip(outs) {
                    let _ = done.send(Ok(out));
                }
                continue;
            }
            Ok(outs) => format!("{} results for {rows} requests", outs.len()),
            Err(e) => e.to_string(),
        };
        for done in answers {
            let _ = done.send(Err(Failed::Batch {
                rows,
                message: failure.clone(),
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_caller_gets_its_own_result_and_a_failed_batch_fails_every_caller_in_it() {
        // Doubles its inputs; a batch holding 13 fails as a whole.
        let batches = Batches::start(2, 8, 64, |inputs: Vec<u32>| async move {
            if inputs.contains(&13) {
                return Err(format!("{} rows refused", inputs.len()));
            }
            Ok(inputs.iter().map(|n| n * 2).collect())
        });
        let calls: Vec<_> = (0..40u32)
            .map(|n| {
                let b = batches.clone();
                tokio::spawn(async move { (n, b.call(n).await) })
            })
            .collect();
        let mut failed = 0;
        for call in calls {
            let (n, result) = call.await.unwrap();
            match result {
                Ok(doubled) => assert_eq!(doubled, n * 2),
                Err(Failed::Batch { rows, message }) => {
                    assert_eq!(message, format!("{rows} rows refused"));
                    failed += 1;
                }
                Err(Failed::Gone) => panic!("runner gone"),
            }
        }
        assert!(failed >= 1, "13's batch failed");
    }

    #[tokio::test]
    async fn a_run_that_answers_the_wrong_number_of_results_fails_its_batch() {
        let batches: Batches<u32, u32> =
            Batches::start(1, 8, 8, |_: Vec<u32>| async { Ok::<_, String>(vec![]) });
        assert_eq!(
            batches.call(1).await,
            Err(Failed::Batch {
                rows: 1,
                message: "0 results for 1 requests".into()
            })
        );
    }
}
