//! Coalescing concurrent calls: callers hand in one item each and wait; a few workers take
//! whatever is waiting (up to a maximum) and handle it as one batch — one statement, one
//! remote call — instead of one each. Nobody waits for a batch to fill: an item that finds a
//! worker free is handled at once, alone; batches grow only while every worker is busy.
//!
//! A batch runs in a span that continues the trace of its first caller and links to the
//! others', so each caller's trace still shows the work done for it.

use std::future::Future;
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc, oneshot};
use tracing::Instrument as _;

/// Hands items to the batch workers. Cheap to clone; the workers stop when the last clone
/// is dropped.
pub struct Coalescer<T, R> {
    queue: mpsc::UnboundedSender<Waiter<T, R>>,
}

/// An item, who waits for its result, and the span they wait in.
type Waiter<T, R> = (T, oneshot::Sender<R>, tracing::Span);

impl<T, R> Clone for Coalescer<T, R> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
        }
    }
}

impl<T, R> std::fmt::Debug for Coalescer<T, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coalescer").finish_non_exhaustive()
    }
}

impl<T: Send + 'static, R: Send + 'static> Coalescer<T, R> {
    /// Starts `workers` workers that each hand up to `max_batch` waiting items to `run`,
    /// which answers with one result per item, in order. `name` labels the batch sizes in
    /// `astral_batch_size{batch}`.
    pub fn start<F, Fut>(name: &'static str, workers: usize, max_batch: usize, run: F) -> Self
    where
        F: Fn(Vec<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<R>> + Send + 'static,
    {
        let (queue, waiting) = mpsc::unbounded_channel();
        let waiting = Arc::new(Mutex::new(waiting));
        let run = Arc::new(run);
        for _ in 0..workers.max(1) {
            tokio::spawn(work(name, max_batch.max(1), waiting.clone(), run.clone()));
        }
        Self { queue }
    }

    /// Hands in one item and waits for its result; `None` if the workers are gone or gave no
    /// result for it.
    pub async fn call(&self, item: T) -> Option<R> {
        let (answer, answered) = oneshot::channel();
        self.queue
            .send((item, answer, tracing::Span::current()))
            .ok()?;
        answered.await.ok()
    }
}

type Waiting<T, R> = Arc<Mutex<mpsc::UnboundedReceiver<Waiter<T, R>>>>;

async fn work<T, R, F, Fut>(
    name: &'static str,
    max_batch: usize,
    waiting: Waiting<T, R>,
    run: Arc<F>,
) where
    F: Fn(Vec<T>) -> Fut,
    Fut: Future<Output = Vec<R>>,
{
    loop {
        let batch: Vec<Waiter<T, R>> = {
            let mut waiting = waiting.lock().await;
            let Some(first) = waiting.recv().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < max_batch {
                match waiting.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            batch
        };
        metrics::histogram!("astral_batch_size", "batch" => name).record(batch.len() as f64);
        let span =
            tracing::info_span!(parent: &batch[0].2, "batch", otel.name = name, size = batch.len());
        for (_, _, caller) in &batch[1..] {
            span.follows_from(caller);
        }
        let mut items = Vec::with_capacity(batch.len());
        let mut answers = Vec::with_capacity(batch.len());
        for (item, answer, _) in batch {
            items.push(item);
            answers.push(answer);
        }
        let results = run(items).instrument(span).await;
        for (answer, result) in answers.into_iter().zip(results) {
            // The caller may have gone (its call was cancelled); the work is done anyway.
            let _ = answer.send(result);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_caller_gets_its_own_result_and_waiting_items_share_a_batch() {
        let sizes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let doubler = Coalescer::start("test", 1, 8, move |items: Vec<u32>| {
            seen.lock().unwrap().push(items.len());
            async move { items.into_iter().map(|n| n * 2).collect::<Vec<_>>() }
        });
        // Twenty calls at once on one worker: the first alone, the rest in batches of <= 8.
        let results = futures::future::join_all((0..20).map(|n| doubler.call(n))).await;
        assert_eq!(results, (0..20).map(|n| Some(n * 2)).collect::<Vec<_>>());
        let sizes = sizes.lock().unwrap().clone();
        assert_eq!(sizes.iter().sum::<usize>(), 20);
        assert!(sizes.iter().all(|size| *size <= 8), "{sizes:?}");
        assert!(sizes.len() < 20, "some calls shared a batch: {sizes:?}");
    }

    #[tokio::test]
    async fn a_result_missing_from_the_batch_is_none() {
        let short = Coalescer::start("test", 1, 8, |_items: Vec<u32>| async { Vec::<u32>::new() });
        assert_eq!(short.call(1).await, None);
    }
}
