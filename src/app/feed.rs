//! The application's audit log as one run has read it, shared by every ref of a batch: a
//! lookup is answered from the events already read when they hold what it looks for, or by a
//! read that began late enough to hold it (one under way is joined, not repeated), or else by a
//! read of its own. No lookup waits for a read that began too early to answer it: at most, a
//! lookup that arrives while the newest read is still asking for its first page waits for that
//! one answer (less than one round trip) and then begins the next read, which every lookup
//! arriving meanwhile joins. Reads thus begin at most once per round trip, however many refs
//! record, and a ref's wait for its audit event is one read begun after its own record.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::{AppClient, AppError, AuditEvent, MAX_AUDIT_PAGES, oldest_of};
use crate::ids::SecretRef;

/// Which read of the audit log answers a lookup: one that began less than a while ago, or one
/// that began after a moment (a ref's upsert: only a read begun after it can hold its event).
#[derive(Debug, Clone, Copy)]
pub enum Read {
    /// A read begun less than this long ago.
    Within(Duration),
    /// A read begun at or after this moment.
    StartedAfter(Instant),
}

impl Read {
    /// Whether a read that began at `began` answers this lookup.
    fn answered_by(self, began: Instant) -> bool {
        match self {
            Self::Within(fresh) => began.elapsed() < fresh,
            Self::StartedAfter(t) => began >= t,
        }
    }
}

/// The events read so far, and the reads under way.
#[derive(Debug, Default)]
pub(super) struct Feed {
    seen: HashSet<String>,
    /// Events by `metadata.ref`: a ref's lookup costs its own events, not the whole log's.
    by_ref: HashMap<String, Vec<AuditEvent>>,
    /// When the latest read that reached the floor (or the log's end) began.
    fetched: Option<Instant>,
    /// Reads under way.
    reading: Vec<Under>,
    /// The next read's number.
    next: u64,
}

/// A read under way, as the feed knows it.
#[derive(Debug)]
struct Under {
    number: u64,
    began: Instant,
    /// Turns `true` when the read's first page has answered (or the read ended).
    first_page: watch::Receiver<bool>,
    /// Turns `true` when the read ended.
    done: watch::Receiver<bool>,
}

impl Feed {
    fn found(
        &self,
        secret_ref: &SecretRef,
        matches: &impl Fn(&AuditEvent) -> bool,
    ) -> Option<String> {
        self.by_ref
            .get(secret_ref.as_str())
            .and_then(|events| events.iter().find(|e| matches(e)))
            .map(|e| e.id.clone())
    }

    /// Whether a read that reached the floor answers `read`: what it did not find is not there.
    fn answered(&self, read: Read) -> bool {
        self.fetched.is_some_and(|began| read.answered_by(began))
    }

    /// A read under way that began late enough to answer `read`.
    fn joinable(&self, read: Read) -> Option<watch::Receiver<bool>> {
        self.reading
            .iter()
            .find(|r| read.answered_by(r.began))
            .map(|r| r.done.clone())
    }

    /// The newest read under way, while its first page has not answered.
    fn asking(&self) -> Option<watch::Receiver<bool>> {
        self.reading
            .iter()
            .max_by_key(|r| r.began)
            .filter(|r| !*r.first_page.borrow())
            .map(|r| r.first_page.clone())
    }

    fn keep(&mut self, page: Vec<AuditEvent>) {
        for event in page {
            if self.seen.insert(event.id.clone()) {
                let key = event.metadata["ref"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                self.by_ref.entry(key).or_default().push(event);
            }
        }
    }
}

/// A read under way, registered in the feed; dropped (finished, failed or cancelled), it
/// leaves the feed and tells those who joined it.
struct Reading<'a> {
    client: &'a AppClient,
    number: u64,
    began: Instant,
    first_page: watch::Sender<bool>,
    done: watch::Sender<bool>,
}

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        self.client
            .feed()
            .reading
            .retain(|r| r.number != self.number);
        let _ = self.first_page.send(true);
        let _ = self.done.send(true);
    }
}

/// How a lookup stands against what was read and what is being read.
enum Standing<'a> {
    /// The events read hold it.
    Found(String),
    /// A read that answers it reached the floor without it.
    Answered,
    /// A read under way answers it: wait for its end.
    Join(watch::Receiver<bool>),
    /// The newest read began too early, and is still asking for its first page: the next read
    /// begins when it has answered.
    Next(watch::Receiver<bool>),
    /// A read of this lookup's own, registered.
    Read(Reading<'a>),
}

/// How many times a lookup joins or waits for others' reads before it reads for itself.
const PATIENCE: usize = 3;

impl AppClient {
    pub(super) fn feed(&self) -> std::sync::MutexGuard<'_, Feed> {
        self.feed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Where a lookup stands; a lookup that is to read registers its read in the same look,
    /// so that lookups arriving after it join it. `patient`: it may join or wait.
    fn standing(
        &self,
        secret_ref: &SecretRef,
        read: Read,
        matches: &impl Fn(&AuditEvent) -> bool,
        patient: bool,
    ) -> Standing<'_> {
        let mut feed = self.feed();
        if let Some(id) = feed.found(secret_ref, matches) {
            return Standing::Found(id);
        }
        if feed.answered(read) {
            return Standing::Answered;
        }
        if patient {
            if let Some(done) = feed.joinable(read) {
                return Standing::Join(done);
            }
            if let Some(first_page) = feed.asking() {
                return Standing::Next(first_page);
            }
        }
        // When the read began: an event created after this moment may be missing from it.
        let began = Instant::now();
        let (first_page, first_page_rx) = watch::channel(false);
        let (done, done_rx) = watch::channel(false);
        let number = feed.next;
        feed.next += 1;
        feed.reading.push(Under {
            number,
            began,
            first_page: first_page_rx,
            done: done_rx,
        });
        Standing::Read(Reading {
            client: self,
            number,
            began,
            first_page,
            done,
        })
    }

    /// The id of the first audit event of `action` for `secret_ref` that `matches`, reading the
    /// log unless a read by any ref of this run answers (see [`Read`] and this module's doc).
    ///
    /// A read starts at the first page and goes back until it finds what it looks for, or its
    /// events are older than two minutes before this run's first upsert by the application's
    /// clock ([`Self::audit_floor`]), or, before any upsert, `max_pages` pages: an event is
    /// listed under its `createdAt` and may become visible seconds after newer ones, so a read
    /// never stops at a page it saw before. It is bounded by [`MAX_AUDIT_PAGES`], and ends at a
    /// page that goes back in time.
    pub async fn find_audit_event(
        &self,
        action: &str,
        secret_ref: &SecretRef,
        read: Read,
        max_pages: usize,
        matches: impl Fn(&AuditEvent) -> bool,
    ) -> Result<Option<String>, AppError> {
        let mut round = 0;
        loop {
            match self.standing(secret_ref, read, &matches, round < PATIENCE) {
                Standing::Found(id) => return Ok(Some(id)),
                Standing::Answered => return Ok(None),
                Standing::Join(mut signal) | Standing::Next(mut signal) => {
                    let _ = signal.wait_for(|answered| *answered).await;
                    round += 1;
                }
                Standing::Read(reading) => {
                    return self
                        .read_log(reading, action, secret_ref, max_pages, &matches)
                        .await;
                }
            }
        }
    }

    /// One read of the log from its first page, registered (`reading`) so that other lookups
    /// may join it.
    async fn read_log(
        &self,
        reading: Reading<'_>,
        action: &str,
        secret_ref: &SecretRef,
        max_pages: usize,
        matches: &impl Fn(&AuditEvent) -> bool,
    ) -> Result<Option<String>, AppError> {
        let began = reading.began;
        let floor = self.audit_floor();
        let pages = if floor.is_some() {
            MAX_AUDIT_PAGES
        } else {
            max_pages.clamp(1, MAX_AUDIT_PAGES)
        };
        let mut cursor: Option<String> = None;
        let mut previous: Option<chrono::DateTime<chrono::Utc>> = None;
        let mut complete = true;
        for _ in 0..pages {
            let (page, next) = self.audit_page(action, cursor.as_deref()).await?;
            // A page that ends on an event newer than the page before ended goes back in time:
            // not newest first, or paging forever. (With an offset cursor, events arriving
            // between two requests repeat a few of the previous page's: that page still ends
            // older.) What was read stands, no further.
            let oldest = oldest_of(&page);
            if oldest.zip(previous).is_some_and(|(o, p)| o > p) {
                break;
            }
            let found = {
                let mut feed = self.feed();
                feed.keep(page);
                feed.found(secret_ref, matches).is_some()
            };
            let _ = reading.first_page.send(true);
            // What this search looks for, found: the search ends (it is not a seen page that
            // ends it). Newest first, a ref's own event is on the first pages.
            if found {
                complete = false;
                break;
            }
            let past_floor = floor.zip(oldest).is_some_and(|(f, o)| o < f);
            previous = oldest.or(previous);
            match next {
                Some(next) if !past_floor => cursor = Some(next),
                _ => break,
            }
        }
        let found = {
            let mut feed = self.feed();
            // Only a read that reached the floor (or the log's end) answers the lookups begun
            // before it; one that ended on its own find answers only that.
            if complete && feed.fetched.is_none_or(|f| f < began) {
                feed.fetched = Some(began);
            }
            feed.found(secret_ref, matches)
        };
        // Ended: it leaves the feed (which it locks) and wakes those who joined it.
        drop(reading);
        Ok(found)
    }

    /// When each of `ids` was created, by the runner's clock (the application's `createdAt`
    /// less the measured offset), for the events this run's searches read.
    pub async fn event_times(
        &self,
        ids: &[String],
    ) -> HashMap<String, chrono::DateTime<chrono::Utc>> {
        let offset = self.clock().offset.unwrap_or_default();
        let feed = self.feed();
        feed.by_ref
            .values()
            .flatten()
            .filter(|e| ids.contains(&e.id))
            .filter_map(|e| {
                chrono::DateTime::parse_from_rfc3339(&e.created_at)
                    .ok()
                    .map(|t| (e.id.clone(), t.with_timezone(&chrono::Utc) - offset))
            })
            .collect()
    }

    /// The ids of the events already read that `matches`, for `secret_ref`: what this run knows
    /// of the log without another request.
    pub fn known_events(
        &self,
        secret_ref: &SecretRef,
        matches: impl Fn(&AuditEvent) -> bool,
    ) -> Vec<String> {
        self.feed()
            .by_ref
            .get(secret_ref.as_str())
            .into_iter()
            .flatten()
            .filter(|e| matches(e))
            .map(|e| e.id.clone())
            .collect()
    }
}
