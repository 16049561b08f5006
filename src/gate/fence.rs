//! The promise that a withdrawal holds on every instance the moment its write answers.
//!
//! Invalidations reach other instances by `NOTIFY` (see `notify`), which arrives a few
//! milliseconds after commit. Two rules close that gap:
//!
//! - **Barriers.** After its commit, a write asks this instance's listener for a barrier:
//!   a notification carrying a number from a database sequence, drawn after the commit.
//!   PostgreSQL delivers notifications in commit order, so an instance that has seen
//!   barrier `n` has seen every change committed before `n` was drawn. Each listener
//!   reports the highest barrier it has seen in its own messages; the write answers once
//!   every live peer (and this instance) has reported its barrier.
//! - **Leases.** An instance answers from its cache only while one of its *own* barriers
//!   came back within `lease`; then it has seen everything committed before that barrier
//!   was sent. An instance that stopped hearing (a lost connection, a stalled thread)
//!   reads the database instead. So a write whose peers do not report may still answer
//!   after `lease` and a margin: by then every instance that missed the change has
//!   stopped using its cache.
//!
//! This module is the bookkeeping, with time passed in; `notify` does the talking.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// What a message on the barrier channel says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A write waits on this barrier: peers, report promptly.
    Wanted,
    /// A report or a heartbeat.
    Report,
    /// The sender stops; do not wait for it.
    Leaving,
}

/// One message on the barrier channel: `"<instance> <seq> <seen> <kind>"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub instance: String,
    /// This message's own barrier number.
    pub seq: i64,
    /// The highest barrier the sender had seen when it sent this.
    pub seen: i64,
    pub kind: Kind,
}

impl Message {
    /// The payload without the sequence number, which the database appends.
    pub fn prefix(instance: &str, seen: i64, kind: Kind) -> String {
        let kind = match kind {
            Kind::Wanted => 'w',
            Kind::Report => 'r',
            Kind::Leaving => 'x',
        };
        format!("{instance} {seen} {kind} ")
    }

    pub fn parse(payload: &str) -> Option<Self> {
        let mut parts = payload.split(' ');
        let instance = parts.next().filter(|i| !i.is_empty())?.to_owned();
        let seen = parts.next()?.parse().ok()?;
        let kind = match parts.next()? {
            "w" => Kind::Wanted,
            "r" => Kind::Report,
            "x" => Kind::Leaving,
            _ => return None,
        };
        let seq = parts.next()?.parse().ok()?;
        parts.next().is_none().then_some(Self {
            instance,
            seq,
            seen,
            kind,
        })
    }
}

/// A barrier this instance should send now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// Writes up to this request number are covered once it is sent.
    pub covers: u64,
    pub seen: i64,
    pub kind: Kind,
}

#[derive(Debug, Clone, Copy)]
struct Peer {
    seen: i64,
    heard_at: Instant,
}

#[derive(Debug)]
pub struct Bookkeeping {
    me: String,
    lease: Duration,
    /// Writes that asked for a barrier, numbered.
    requested: u64,
    /// The highest request covered by a sent barrier.
    covered: u64,
    /// Sent barriers (request covered, barrier number) whose writes still wait.
    outstanding: VecDeque<(u64, i64)>,
    released: u64,
    /// Own barriers on their way back, with the time each was sent.
    in_flight: VecDeque<(i64, Instant)>,
    seen: i64,
    caught_up_at: Option<Instant>,
    peers: HashMap<String, Peer>,
    reported: i64,
    report_due: bool,
    last_sent_at: Option<Instant>,
}

impl Bookkeeping {
    pub fn new(me: String, lease: Duration) -> Self {
        Self {
            me,
            lease,
            requested: 0,
            covered: 0,
            outstanding: VecDeque::new(),
            released: 0,
            in_flight: VecDeque::new(),
            seen: 0,
            caught_up_at: None,
            peers: HashMap::new(),
            reported: 0,
            report_due: false,
            last_sent_at: None,
        }
    }

    pub fn me(&self) -> &str {
        &self.me
    }

    /// How long a silent peer is still waited for, and how long a write waits at most.
    /// Longer than the lease, so that a peer given up on has stopped using its cache.
    pub fn patience(&self) -> Duration {
        self.lease + self.lease / 4 + Duration::from_millis(100)
    }

    fn heartbeat(&self) -> Duration {
        self.lease / 4
    }

    /// A committed write asks to be released; returns its request number.
    pub fn request(&mut self) -> u64 {
        self.requested += 1;
        self.requested
    }

    /// The barrier to send now, if any: for waiting writes, for peers' waiting writes,
    /// or to renew the lease.
    pub fn due(&self, now: Instant) -> Option<Due> {
        let kind = if self.requested > self.covered {
            Kind::Wanted
        } else if self.report_due
            || self
                .last_sent_at
                .is_none_or(|at| now.duration_since(at) >= self.heartbeat())
        {
            Kind::Report
        } else {
            return None;
        };
        Some(Due {
            covers: self.requested,
            seen: self.seen,
            kind,
        })
    }

    /// The barrier was sent (the query started at `at`) and drew number `seq`.
    pub fn sent(&mut self, due: Due, seq: i64, at: Instant) {
        if due.covers > self.covered {
            self.outstanding.push_back((due.covers, seq));
            self.covered = due.covers;
        }
        self.in_flight.push_back((seq, at));
        self.reported = self.reported.max(due.seen);
        self.report_due = false;
        self.last_sent_at = Some(at);
    }

    /// A message came in on the channel.
    pub fn heard(&mut self, message: &Message, now: Instant) {
        self.seen = self.seen.max(message.seq);
        if message.instance == self.me {
            while let Some(&(seq, at)) = self.in_flight.front() {
                if seq > message.seq {
                    break;
                }
                self.in_flight.pop_front();
                if seq == message.seq {
                    self.caught_up_at = Some(self.caught_up_at.map_or(at, |c| c.max(at)));
                }
            }
            return;
        }
        if message.kind == Kind::Leaving {
            self.peers.remove(&message.instance);
            return;
        }
        let peer = self.peers.entry(message.instance.clone()).or_insert(Peer {
            seen: message.seen,
            heard_at: now,
        });
        peer.seen = peer.seen.max(message.seen);
        peer.heard_at = now;
        if message.kind == Kind::Wanted && message.seq > self.reported {
            self.report_due = true;
        }
    }

    /// Releases the writes whose barrier this instance and every live peer have seen;
    /// forgets peers silent for longer than `patience`. Returns the highest request
    /// released.
    pub fn release(&mut self, now: Instant) -> u64 {
        let patience = self.patience();
        self.peers
            .retain(|_, p| now.duration_since(p.heard_at) < patience);
        while let Some(&(covers, seq)) = self.outstanding.front() {
            let everyone = self.seen >= seq && self.peers.values().all(|p| p.seen >= seq);
            if !everyone {
                break;
            }
            self.outstanding.pop_front();
            self.released = covers;
        }
        self.released
    }

    /// Until when this instance may answer from its cache.
    pub fn trusted_until(&self) -> Option<Instant> {
        self.caught_up_at.map(|at| at + self.lease)
    }

    pub fn peers(&self) -> usize {
        self.peers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(1);

    fn message(instance: &str, seq: i64, seen: i64, kind: Kind) -> Message {
        Message {
            instance: instance.into(),
            seq,
            seen,
            kind,
        }
    }

    /// Sends what is due and returns the message as the channel would carry it.
    fn send(book: &mut Bookkeeping, seq: i64, at: Instant) -> Message {
        let due = book.due(at).expect("something is due");
        book.sent(due, seq, at);
        message(book.me(), seq, due.seen, due.kind)
    }

    #[test]
    fn payloads_round_trip_and_junk_is_refused() {
        let payload = format!("{}42", Message::prefix("a1", 7, Kind::Wanted));
        assert_eq!(
            Message::parse(&payload),
            Some(message("a1", 42, 7, Kind::Wanted))
        );
        for junk in [
            "",
            "a1",
            "a1 7 w",
            "a1 7 q 42",
            "a1 x w 42",
            "a1 7 w 42 9",
            " 7 w 42",
        ] {
            assert_eq!(Message::parse(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn alone_a_write_is_released_when_its_own_barrier_comes_back() {
        let t = Instant::now();
        let mut book = Bookkeeping::new("a".into(), LEASE);
        let _ = send(&mut book, 1, t); // the first heartbeat
        let request = book.request();
        let barrier = send(&mut book, 2, t);
        assert_eq!(barrier.kind, Kind::Wanted);
        assert_eq!(book.release(t), 0);
        book.heard(&barrier, t);
        assert!(book.release(t) >= request);
    }

    #[test]
    fn a_write_waits_for_every_live_peer_to_report_its_barrier() {
        let t = Instant::now();
        let mut a = Bookkeeping::new("a".into(), LEASE);
        let mut b = Bookkeeping::new("b".into(), LEASE);
        // b is known to a.
        let hello = send(&mut b, 1, t);
        a.heard(&hello, t);
        b.heard(&hello, t);

        let request = a.request();
        let barrier = send(&mut a, 2, t);
        a.heard(&barrier, t);
        assert!(a.release(t) < request, "b has not reported yet");

        b.heard(&barrier, t);
        let report = send(&mut b, 3, t);
        assert_eq!(report.kind, Kind::Report);
        assert_eq!(report.seen, 2);
        a.heard(&report, t);
        assert!(a.release(t) >= request);
    }

    #[test]
    fn reports_do_not_ping_pong() {
        let t = Instant::now();
        let mut a = Bookkeeping::new("a".into(), LEASE);
        let mut b = Bookkeeping::new("b".into(), LEASE);
        for book in [&mut a, &mut b] {
            let _ = send(book, 1, t);
        }
        let _ = a.request();
        let barrier = send(&mut a, 2, t);
        b.heard(&barrier, t);
        let report = send(&mut b, 3, t);
        a.heard(&report, t);
        assert_eq!(a.due(t), None, "a report asks for no answer");
    }

    #[test]
    fn a_silent_peer_is_given_up_after_patience_and_a_leaving_one_at_once() {
        let t = Instant::now();
        let mut a = Bookkeeping::new("a".into(), LEASE);
        a.heard(&message("b", 1, 0, Kind::Report), t);
        a.heard(&message("c", 2, 0, Kind::Report), t);
        let request = a.request();
        let barrier = send(&mut a, 3, t);
        a.heard(&barrier, t);
        a.heard(&message("c", 4, 0, Kind::Leaving), t);
        assert!(a.release(t) < request);
        assert_eq!(a.peers(), 1);
        let later = t + a.patience();
        assert!(a.release(later) >= request);
        assert_eq!(a.peers(), 0);
    }

    #[test]
    fn the_lease_runs_from_when_the_own_barrier_was_sent() {
        let t = Instant::now();
        let mut a = Bookkeeping::new("a".into(), LEASE);
        assert_eq!(a.trusted_until(), None, "nothing heard yet");
        let first = send(&mut a, 1, t);
        let lost = send(&mut a, 2, t + Duration::from_millis(300));
        let back = send(&mut a, 3, t + Duration::from_millis(600));
        a.heard(&first, t + Duration::from_millis(700));
        assert_eq!(a.trusted_until(), Some(t + LEASE));
        // A barrier lost with a connection never comes back; a later one still counts.
        let _ = lost;
        a.heard(&back, t + Duration::from_millis(800));
        assert_eq!(
            a.trusted_until(),
            Some(t + Duration::from_millis(600) + LEASE)
        );
        // Others' barriers say nothing of when this instance caught up.
        a.heard(
            &message("b", 9, 0, Kind::Report),
            t + Duration::from_secs(5),
        );
        assert_eq!(
            a.trusted_until(),
            Some(t + Duration::from_millis(600) + LEASE)
        );
    }

    #[test]
    fn heartbeats_renew_the_lease_when_nothing_happens() {
        let t = Instant::now();
        let mut a = Bookkeeping::new("a".into(), LEASE);
        let _ = send(&mut a, 1, t);
        assert_eq!(a.due(t + LEASE / 8), None);
        let due = a.due(t + LEASE / 4).expect("a heartbeat");
        assert_eq!(due.kind, Kind::Report);
    }

    #[test]
    fn writes_covered_by_one_barrier_are_released_together_in_order() {
        let t = Instant::now();
        let mut a = Bookkeeping::new("a".into(), LEASE);
        let (first, second) = (a.request(), a.request());
        let barrier = send(&mut a, 5, t);
        let third = a.request();
        let next = send(&mut a, 6, t);
        a.heard(&barrier, t);
        let released = a.release(t);
        assert!(released >= second && released >= first && released < third);
        a.heard(&next, t);
        assert!(a.release(t) >= third);
    }
}
