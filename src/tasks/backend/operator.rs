//! What the SQL backends share in playing [`QueueOperations`](super::QueueOperations): the
//! checks on a page size and a retry filter, the answers of a cancel, and the counting plan
//! — exact counts through the status index up to [`EXACT_UP_TO`] tasks per queue and
//! status, an estimate above that.
//!
//! The estimate samples the status index: a queue's tasks of one status lie between the
//! lowest and the highest `seq` they hold; [`SAMPLE_WINDOWS`] evenly spaced windows of
//! [`SAMPLE_SPAN`] sequence numbers are counted exactly, and their density scales to the
//! whole span. It reads at most a few tens of thousands of index entries whatever the
//! table's size, and needs no planner statistics (so it is right after a bulk load that
//! PostgreSQL has not analysed yet, and works on SQLite, which keeps none).

use std::collections::{BTreeMap, HashMap};

use uuid::Uuid;

use super::operations::{CancelOutcome, MAX_PAGE, RetrySelection, TaskCounts, TaskFilter};
use crate::tasks::{TaskError, TaskId, TaskStatus};

/// Queue × status populations up to this size are counted exactly; larger ones estimated.
pub(crate) const EXACT_UP_TO: u64 = 10_000;

/// The statuses both backends' status index holds: every one but RUNNING, whose tasks
/// (at most what the workers hold) are listed and counted through the leases index.
pub(crate) const INDEXED_STATUSES: [TaskStatus; 4] = [
    TaskStatus::Ready,
    TaskStatus::Successful,
    TaskStatus::Failed,
    TaskStatus::Cancelled,
];
/// The statuses of a task that has finished (those [`TaskStatus::is_finished`] names): what
/// the pruner deletes.
pub(crate) const FINISHED_STATUSES: [TaskStatus; 3] = [
    TaskStatus::Successful,
    TaskStatus::Failed,
    TaskStatus::Cancelled,
];
/// How many windows of the status index an estimate counts.
pub(crate) const SAMPLE_WINDOWS: i64 = 32;
/// How many sequence numbers one window spans.
pub(crate) const SAMPLE_SPAN: i64 = 512;

/// The page size as SQL wants it: 1..=[`MAX_PAGE`], else an error naming `limit`.
pub(crate) fn page_limit(limit: usize) -> Result<i64, TaskError> {
    if (1..=MAX_PAGE).contains(&limit) {
        Ok(limit as i64)
    } else {
        Err(TaskError::invalid(
            "limit",
            format!("must be between 1 and {MAX_PAGE}, got {limit}"),
        ))
    }
}

/// The statuses a retry selects: those of the filter, which must be `FAILED` or
/// `CANCELLED` (both when it names none).
pub(crate) fn retry_statuses(selection: &RetrySelection) -> Result<Vec<TaskStatus>, TaskError> {
    let retryable = [TaskStatus::Failed, TaskStatus::Cancelled];
    match selection {
        RetrySelection::Ids(_) => Ok(retryable.to_vec()),
        RetrySelection::Filter(f) if f.statuses.is_empty() => Ok(retryable.to_vec()),
        RetrySelection::Filter(f) => {
            if let Some(s) = f.statuses.iter().find(|s| !retryable.contains(s)) {
                return Err(TaskError::invalid(
                    "status",
                    format!("`{s}` tasks cannot be retried; only FAILED and CANCELLED ones"),
                ));
            }
            Ok(dedup(&f.statuses))
        }
    }
}

/// The (status, queue) ranges a listing walks its indexes for, newest first: the filter's
/// statuses (every status when it names only a queue), each in the filter's queue or, when
/// it names none, in every queue holding that status (found by `queues_of`). `None`: the
/// filter names neither, so walk the table in `seq` order instead. `Some` of nothing: no
/// task can match.
pub(crate) async fn listing_pairs<F, Fut>(
    filter: &TaskFilter,
    queues_of: F,
) -> Result<Option<Vec<(TaskStatus, String)>>, TaskError>
where
    F: FnOnce(Vec<TaskStatus>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<(TaskStatus, String)>, TaskError>>,
{
    let statuses = if !filter.statuses.is_empty() {
        dedup(&filter.statuses)
    } else if filter.queue_name.is_some() {
        TaskStatus::ALL.to_vec()
    } else {
        return Ok(None);
    };
    Ok(Some(match &filter.queue_name {
        Some(q) => statuses.iter().map(|s| (*s, q.clone())).collect(),
        None => queues_of(statuses).await?,
    }))
}

fn dedup(statuses: &[TaskStatus]) -> Vec<TaskStatus> {
    let mut out: Vec<TaskStatus> = Vec::with_capacity(statuses.len());
    for s in statuses {
        if !out.contains(s) {
            out.push(*s);
        }
    }
    out
}

/// The ids without repeats, in their first order.
pub(crate) fn unique_ids(ids: &[TaskId]) -> Vec<Uuid> {
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    ids.iter()
        .map(|i| i.0)
        .filter(|i| seen.insert(*i))
        .collect()
}

/// The answer for each of `ids`, from the tasks the cancel changed (`changed`: id → status
/// afterwards, `CANCELLED` or `RUNNING`) and the status of the others (`seen`); an id in
/// neither does not exist. `None` when some task of `seen` is neither finished nor changed:
/// it was put back to `READY` meanwhile, so the cancel must be tried again for it.
pub(crate) fn cancel_outcomes(
    ids: &[TaskId],
    changed: &HashMap<Uuid, TaskStatus>,
    seen: &HashMap<Uuid, TaskStatus>,
) -> Option<Vec<(TaskId, CancelOutcome)>> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let outcome = match (changed.get(&id.0), seen.get(&id.0)) {
            (Some(TaskStatus::Cancelled), _) => CancelOutcome::Cancelled,
            (Some(_), _) => CancelOutcome::Requested,
            (None, Some(s)) if s.is_finished() => CancelOutcome::AlreadyFinished(*s),
            (None, Some(_)) => return None,
            (None, None) => CancelOutcome::NotFound,
        };
        out.push((*id, outcome));
    }
    Some(out)
}

/// A cancel as both SQL backends run it: `cancel_once` cancels the distinct ids once and
/// returns what it changed and what it saw ([`cancel_outcomes`]); a task put back to
/// `READY` by a retry between the update and the read is cancelled again, a few times at
/// most. (Under SQLite's `BEGIN IMMEDIATE` nothing changes in between, so one round
/// answers.)
pub(crate) async fn cancel_with<F, Fut>(
    ids: &[TaskId],
    cancel_once: F,
) -> Result<Vec<(TaskId, CancelOutcome)>, TaskError>
where
    F: Fn(Vec<Uuid>) -> Fut,
    Fut: std::future::Future<
            Output = Result<(HashMap<Uuid, TaskStatus>, HashMap<Uuid, TaskStatus>), TaskError>,
        >,
{
    let unique = unique_ids(ids);
    for _ in 0..5 {
        let (changed, seen) = cancel_once(unique.clone()).await?;
        if let Some(out) = cancel_outcomes(ids, &changed, &seen) {
            return Ok(out);
        }
    }
    Err(TaskError::Storage {
        message: "the tasks to cancel kept being retried meanwhile; cancel them again".to_owned(),
        source: None,
    })
}

/// The ids a retry put back (with their `seq`), in the order to report them: as the caller
/// listed them for a retry by id, in enqueue order for one by filter.
pub(crate) fn retried_in_order(
    selection: &RetrySelection,
    mut retried: Vec<(i64, Uuid)>,
) -> Vec<TaskId> {
    match selection {
        RetrySelection::Ids(ids) => {
            let done: std::collections::HashSet<Uuid> = retried.iter().map(|(_, id)| *id).collect();
            unique_ids(ids)
                .into_iter()
                .filter(|id| done.contains(id))
                .map(TaskId)
                .collect()
        }
        RetrySelection::Filter(_) => {
            retried.sort_unstable();
            retried.into_iter().map(|(_, id)| TaskId(id)).collect()
        }
    }
}

/// The windows `[start, end)` of sequence numbers an estimate of a population spanning
/// `lo..=hi` counts.
pub(crate) fn sample_windows(lo: i64, hi: i64) -> Vec<(i64, i64)> {
    let range = (hi - lo + 1).max(1);
    let step = (range / SAMPLE_WINDOWS).max(1);
    let span = SAMPLE_SPAN.min(step);
    (0..SAMPLE_WINDOWS)
        .map(|i| {
            let start = lo + i * step + (step - span) / 2;
            (start, start + span)
        })
        .collect()
}

/// The estimated size of a population of more than [`EXACT_UP_TO`] tasks spanning
/// `lo..=hi`, of which the windows of [`sample_windows`] hold `sampled`.
pub(crate) fn estimate(lo: i64, hi: i64, sampled: u64) -> u64 {
    let windows = sample_windows(lo, hi);
    let covered: i64 = windows.iter().map(|(a, b)| b - a).sum();
    let range = u64::try_from(hi - lo + 1).unwrap_or(0);
    let scaled = (sampled as f64 / covered.max(1) as f64 * range as f64).round() as u64;
    // It holds more than EXACT_UP_TO tasks (they were counted) and at most one per seq.
    scaled.clamp(EXACT_UP_TO + 1, range.max(EXACT_UP_TO + 1))
}

/// Collects counts into [`TaskCounts`].
#[derive(Debug)]
pub(crate) struct CountsBuilder {
    counts: TaskCounts,
}

impl CountsBuilder {
    /// Starts with no counts, all exact.
    pub(crate) fn new() -> Self {
        CountsBuilder {
            counts: TaskCounts {
                counts: BTreeMap::new(),
                estimated: Default::default(),
                exact: true,
            },
        }
    }

    /// Records an exact count.
    pub(crate) fn exact(&mut self, queue: &str, status: TaskStatus, n: u64) {
        if n > 0 {
            self.counts
                .counts
                .entry(queue.to_owned())
                .or_default()
                .insert(status, n);
        }
    }

    /// Records an estimate.
    pub(crate) fn estimated(&mut self, queue: &str, status: TaskStatus, n: u64) {
        self.exact(queue, status, n);
        self.counts.exact = false;
        self.counts.estimated.insert((queue.to_owned(), status));
    }

    /// The counts.
    pub(crate) fn finish(self) -> TaskCounts {
        self.counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_finished_statuses_are_those_is_finished_names() {
        let finished: Vec<TaskStatus> = TaskStatus::ALL
            .into_iter()
            .filter(|s| s.is_finished())
            .collect();
        assert_eq!(finished, FINISHED_STATUSES);
    }

    #[test]
    fn estimates_scale_the_sampled_density_and_stay_in_bounds() {
        // Every other seq over a million: about half a million.
        let (lo, hi) = (1, 1_000_000);
        let covered: i64 = sample_windows(lo, hi).iter().map(|(a, b)| b - a).sum();
        assert_eq!(covered, SAMPLE_WINDOWS * SAMPLE_SPAN);
        let n = estimate(lo, hi, (covered / 2) as u64);
        assert!((499_000..=501_000).contains(&n), "{n}");
        // Never below what was counted, never above one per seq.
        assert_eq!(estimate(lo, hi, 0), EXACT_UP_TO + 1);
        assert_eq!(estimate(lo, 60_000, 1 << 40), 60_000);
        for (a, b) in sample_windows(lo, hi) {
            assert!(lo <= a && a < b && b <= hi + 1);
        }
    }

    #[test]
    fn page_limits_and_retry_filters_are_checked() {
        assert_eq!(page_limit(0).unwrap_err().field(), Some("limit"));
        assert_eq!(page_limit(MAX_PAGE + 1).unwrap_err().field(), Some("limit"));
        assert_eq!(page_limit(MAX_PAGE).unwrap(), MAX_PAGE as i64);
        let f = TaskFilter {
            statuses: vec![TaskStatus::Failed, TaskStatus::Running],
            ..TaskFilter::default()
        };
        assert_eq!(
            retry_statuses(&RetrySelection::Filter(f))
                .unwrap_err()
                .field(),
            Some("status")
        );
        assert_eq!(
            retry_statuses(&RetrySelection::Filter(TaskFilter::default())).unwrap(),
            [TaskStatus::Failed, TaskStatus::Cancelled]
        );
    }
}
