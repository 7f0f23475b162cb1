//! The journal: what a backend hands its finished (or detached) migrations
//! to. It writes each on a thread of its own, so that a backend can submit
//! while it holds its own locks, and writes each migration's final record
//! exactly once.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::{History, Record, Recorder};

/// Longest wait for another process's lock on the file while vmshift runs.
const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// After [`Journal::flush`]'s time is up, how long the record being written
/// still has to end (a wait for the lock ends at once; a write or sync to a
/// hung disk may not).
const FLUSH_GRACE: Duration = Duration::from_secs(2);

type Notify = Box<dyn Fn(&str) + Send>;

/// A handle to the flight recorder, shared by a backend and its front end.
/// [`Journal::off`] records nothing (tests, dry runs).
#[derive(Clone, Default)]
pub struct Journal {
    inner: Option<Arc<Inner>>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            Some(i) => match &i.recorder {
                Ok(r) => write!(f, "Journal({})", r.path().display()),
                Err(e) => write!(f, "Journal(unavailable: {e})"),
            },
            None => write!(f, "Journal(off)"),
        }
    }
}

struct Inner {
    /// The file, or why there is none (then every record fails with that).
    recorder: Result<Recorder, String>,
    state: Mutex<State>,
    cv: Condvar,
    notify: Mutex<Option<Notify>>,
    /// Set when a flush's time is up: a wait for the lock gives up.
    cancel: AtomicBool,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Record>,
    /// The record being written (taken from the queue, not yet settled).
    in_flight: Option<Record>,
    writer: bool,
    /// Ids whose final record was submitted: never twice.
    finals: HashSet<String>,
    /// Records that could not be written, with the error.
    failures: Vec<(Record, String)>,
    written: usize,
}

/// A record that could not be written.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub record: Record,
    pub error: String,
}

impl Journal {
    /// A journal writing to `recorder`; with `Err(why)`, every record
    /// submitted fails with `why` (and the front end reports it).
    pub fn new(recorder: Result<Recorder, String>) -> Journal {
        Journal {
            inner: Some(Arc::new(Inner {
                recorder,
                state: Mutex::new(State::default()),
                cv: Condvar::new(),
                notify: Mutex::new(None),
                cancel: AtomicBool::new(false),
            })),
        }
    }

    /// The journal in the default state dir.
    pub fn open_default() -> Journal {
        Journal::new(Recorder::open_default())
    }

    /// A journal that records nothing.
    pub fn off() -> Journal {
        Journal { inner: None }
    }

    pub fn recorder(&self) -> Option<&Recorder> {
        self.inner.as_ref().and_then(|i| i.recorder.as_ref().ok())
    }

    /// Calls `f` with the error sentence each time a record cannot be written.
    pub fn on_failure(&self, f: impl Fn(&str) + Send + 'static) {
        if let Some(i) = &self.inner
            && let Ok(mut n) = i.notify.lock()
        {
            *n = Some(Box::new(f));
        }
    }

    /// The history as it is on disk (empty for a journal that records nothing).
    pub fn read(&self) -> Result<History, String> {
        match self.inner.as_ref().map(|i| &i.recorder) {
            Some(Ok(r)) => r.read(),
            Some(Err(e)) => Err(e.clone()),
            None => Ok(History::default()),
        }
    }

    /// Queues `record` for writing; returns at once. A second final record
    /// for the same migration id is dropped.
    pub fn submit(&self, record: Record) {
        let Some(inner) = &self.inner else { return };
        let Ok(mut s) = inner.state.lock() else {
            return;
        };
        if s.finals.contains(&record.id) {
            return;
        }
        if record.is_final() {
            s.finals.insert(record.id.clone());
        }
        s.queue.push_back(record);
        if !s.writer {
            s.writer = true;
            let inner = inner.clone();
            let spawned = std::thread::Builder::new()
                .name("vmshift-recorder".into())
                .spawn(move || write_loop(inner));
            if spawned.is_err() {
                s.writer = false;
            }
        }
        inner.cv.notify_all();
    }

    /// Whether a final record for `id` has been submitted.
    pub fn has_final(&self, id: &str) -> bool {
        self.inner.as_ref().is_some_and(|i| {
            i.state
                .lock()
                .map(|s| s.finals.contains(id))
                .unwrap_or(false)
        })
    }

    /// Waits (at most `timeout`) until every record submitted so far is
    /// written or has failed; unlike [`Journal::flush`] it gives nothing up
    /// (a record still waiting for the lock goes on waiting). Whether all
    /// of them are settled.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let Some(inner) = &self.inner else {
            return true;
        };
        let deadline = Instant::now() + timeout;
        let Ok(mut s) = inner.state.lock() else {
            return false;
        };
        while (!s.queue.is_empty() || s.in_flight.is_some()) && Instant::now() < deadline {
            if !s.writer {
                return false; // `flush` writes what no thread could
            }
            s = match inner.cv.wait_timeout(s, deadline - Instant::now()) {
                Ok((s, _)) => s,
                Err(_) => return false,
            };
        }
        s.queue.is_empty() && s.in_flight.is_none()
    }

    /// Waits (at most `timeout`) until every submitted record is written or
    /// has failed; returns every failure so far. Never returns a record as
    /// neither: when the time is up, records still queued fail, a wait for
    /// the file's lock gives up, and a record whose write or sync has not
    /// ended [`FLUSH_GRACE`] later (a hung disk) is returned as failed too.
    pub fn flush(&self, timeout: Duration) -> Vec<Failure> {
        let Some(inner) = &self.inner else {
            return Vec::new();
        };
        let deadline = Instant::now() + timeout;
        let Ok(mut s) = inner.state.lock() else {
            return Vec::new();
        };
        let pending = |s: &State| !s.queue.is_empty() || s.in_flight.is_some();
        while pending(&s) && Instant::now() < deadline {
            if !s.writer {
                // No thread could be started: write here, within the time.
                let Some(r) = s.queue.pop_front() else { break };
                drop(s);
                let wait = deadline.saturating_duration_since(Instant::now());
                let result = inner.append(&r, wait);
                s = match inner.state.lock() {
                    Ok(s) => s,
                    Err(_) => return Vec::new(),
                };
                settle(inner, &mut s, r, result);
                continue;
            }
            s = match inner.cv.wait_timeout(s, deadline - Instant::now()) {
                Ok((s, _)) => s,
                Err(_) => return Vec::new(),
            };
        }
        if pending(&s) {
            // Out of time: nothing new starts, a wait for the lock ends.
            inner.cancel.store(true, Ordering::SeqCst);
            let late: Vec<Record> = s.queue.drain(..).collect();
            for r in late {
                let e = format!(
                    "it was still waiting for an earlier record after {} s",
                    timeout.as_secs()
                );
                settle(inner, &mut s, r, Err(e));
            }
            let grace = Instant::now() + FLUSH_GRACE;
            while s.in_flight.is_some() && Instant::now() < grace {
                s = match inner.cv.wait_timeout(s, grace - Instant::now()) {
                    Ok((s, _)) => s,
                    Err(_) => return Vec::new(),
                };
            }
            if let Some(r) = s.in_flight.take() {
                let e = format!(
                    "the disk had not finished writing it after {} s (a hung or very slow disk); if it shows up in the file later, do not add it again",
                    (timeout + FLUSH_GRACE).as_secs()
                );
                settle(inner, &mut s, r, Err(e));
            }
            inner.cancel.store(false, Ordering::SeqCst);
        }
        s.failures
            .iter()
            .map(|(record, error)| Failure {
                record: record.clone(),
                error: error.clone(),
            })
            .collect()
    }

    /// Records written so far.
    pub fn written(&self) -> usize {
        self.inner
            .as_ref()
            .and_then(|i| i.state.lock().ok().map(|s| s.written))
            .unwrap_or(0)
    }
}

impl Inner {
    /// Writes `r`, waiting at most `lock_wait` for the file's lock (less
    /// when a flush runs out of time).
    fn append(&self, r: &Record, lock_wait: Duration) -> Result<(), String> {
        match &self.recorder {
            Ok(rec) => rec.append_unless(r, lock_wait, &self.cancel),
            Err(e) => Err(e.clone()),
        }
    }
}

fn settle(inner: &Inner, s: &mut State, r: Record, result: Result<(), String>) {
    match result {
        Ok(()) => s.written += 1,
        Err(e) => {
            tracing::error!(error = %e, id = %r.id, "flight recorder write failed");
            if let Ok(n) = inner.notify.lock()
                && let Some(f) = n.as_ref()
            {
                f(&format!(
                    "the migration of {} could not be recorded: {e}",
                    r.migration.vm
                ));
            }
            s.failures.push((r, e));
        }
    }
}

fn write_loop(inner: Arc<Inner>) {
    loop {
        let Ok(mut s) = inner.state.lock() else {
            return;
        };
        let r = loop {
            if let Some(r) = s.queue.pop_front() {
                break r;
            }
            s = match inner.cv.wait(s) {
                Ok(s) => s,
                Err(_) => return,
            };
        };
        s.in_flight = Some(r.clone());
        drop(s);
        let result = inner.append(&r, LOCK_TIMEOUT);
        let Ok(mut s) = inner.state.lock() else {
            return;
        };
        // A flush that ran out of time has reported it failed already.
        if s.in_flight.take().is_some() {
            settle(&inner, &mut s, r, result);
        }
        inner.cv.notify_all();
    }
}
