//! "Can I reach this customer, where, and when?" as pure functions: for each channel in
//! the customer's order, whether the company may use it now for a purpose, and if not,
//! why and when it may. The gate's decision for the purpose on that channel comes in
//! decided; these rules add what is particular to sending a message: the channel's own
//! opt-in where its jurisdiction needs one, the weekly cap, and quiet hours, all in the
//! customer's time zone.

use chrono::{DateTime, Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use utoipa::ToSchema;

use super::rules::Decision;

/// How long the weekly cap looks back: today and the six days before, in the customer's
/// calendar.
pub const CAP_DAYS: u64 = 7;

/// Why a channel may or may not be used now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReachReason {
    /// Every rule allows it.
    Allowed,
    /// The gate denies the purpose on this channel (`decision_reason` says why).
    PurposeDenied,
    /// The jurisdiction needs the customer's opt-in to this channel, and there is none.
    ChannelOptInRequired,
    /// The customer's weekly cap for this channel is used up.
    WeeklyCapReached,
    /// It is quiet hours where the customer is.
    QuietHours,
}

impl ReachReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ReachReason::Allowed => "allowed",
            ReachReason::PurposeDenied => "purpose_denied",
            ReachReason::ChannelOptInRequired => "channel_opt_in_required",
            ReachReason::WeeklyCapReached => "weekly_cap_reached",
            ReachReason::QuietHours => "quiet_hours",
        }
    }
}

/// One channel's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelReach {
    pub allowed: bool,
    pub reason: ReachReason,
    /// When the channel may be used again, when that is known (caps, quiet hours).
    pub next_allowed_at: Option<DateTime<Utc>>,
}

/// What is known of one channel for one customer.
#[derive(Debug, Clone, Copy)]
pub struct ChannelFacts<'a> {
    /// The gate's decision for the purpose on this channel.
    pub decision: &'a Decision,
    /// The channel needs an explicit opt-in in the customer's jurisdiction.
    pub needs_opt_in: bool,
    /// The customer explicitly opted in to the channel.
    pub opted_in: bool,
    /// The customer's weekly cap for the channel, if any.
    pub cap: Option<u32>,
    /// When messages on this channel were sent to the customer (any order; older ones
    /// than the cap's window are ignored).
    pub sent: &'a [DateTime<Utc>],
}

/// The customer's clock: their time zone and quiet hours (local `start`..`end`, which
/// may cross midnight).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub zone: Tz,
    pub quiet: Option<(NaiveTime, NaiveTime)>,
}

/// Whether one channel may be used at `now`, and if not, why and until when. The order
/// of the checks is the order of their permanence: a denial by the gate or a missing
/// opt-in lasts until the customer acts; a cap and quiet hours pass with time.
pub fn reach(facts: &ChannelFacts<'_>, clock: &Clock, now: DateTime<Utc>) -> ChannelReach {
    let refuse = |reason, next_allowed_at| ChannelReach {
        allowed: false,
        reason,
        next_allowed_at,
    };
    if !facts.decision.allowed {
        return refuse(ReachReason::PurposeDenied, None);
    }
    if facts.needs_opt_in && !facts.opted_in {
        return refuse(ReachReason::ChannelOptInRequired, None);
    }
    let cap_frees = facts
        .cap
        .and_then(|cap| cap_frees_at(facts.sent, cap, clock.zone, now));
    let quiet_ends = clock
        .quiet
        .and_then(|(start, end)| quiet_ends_at(clock.zone, start, end, now));
    match (cap_frees, quiet_ends) {
        (Some(frees), _) => {
            // The cap may free up inside quiet hours: then the quiet hours' end.
            let after = clock
                .quiet
                .and_then(|(start, end)| quiet_ends_at(clock.zone, start, end, frees))
                .unwrap_or(frees);
            refuse(ReachReason::WeeklyCapReached, Some(after))
        }
        (None, Some(ends)) => refuse(ReachReason::QuietHours, Some(ends)),
        (None, None) => ChannelReach {
            allowed: true,
            reason: ReachReason::Allowed,
            next_allowed_at: None,
        },
    }
}

/// Which channels to answer for, most preferred first. The base order is the
/// customer's own, else their country's default. Asked-for channels come in that order,
/// those it does not rank after them as asked; with none asked, the base order and then
/// the channels the customer opted in to that it leaves out, in `opted_in`'s order.
pub fn channels_in_order<C: PartialEq + Clone>(
    own: &[C],
    default: &[C],
    opted_in: &[C],
    asked: Option<&[C]>,
) -> Vec<C> {
    let base = if own.is_empty() { default } else { own };
    match asked {
        Some(asked) => {
            let mut ranked: Vec<&C> = base.iter().filter(|c| asked.contains(c)).collect();
            ranked.extend(asked.iter().filter(|c| !base.contains(c)));
            ranked.into_iter().cloned().collect()
        }
        None => {
            let mut all = base.to_vec();
            all.extend(opted_in.iter().filter(|c| !base.contains(c)).cloned());
            all
        }
    }
}

/// The first instant of a local date: midnight, or the end of a gap that swallows it
/// (São Paulo's old DST began at midnight), or the earlier of two midnights.
pub fn start_of_day(zone: Tz, date: NaiveDate) -> DateTime<Utc> {
    local_instant(zone, date.and_time(NaiveTime::MIN))
}

/// A local wall-clock time as an instant: the earlier one when it happens twice (the
/// clocks go back), the first instant after the gap when it does not happen at all.
fn local_instant(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let mut probe = local;
    // Gaps last at most a few hours; step through them a minute at a time.
    for _ in 0..(24 * 60) {
        match zone.from_local_datetime(&probe) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(earlier, _) => return earlier.with_timezone(&Utc),
            LocalResult::None => probe += chrono::Duration::minutes(1),
        }
    }
    // Unreachable for real zones; read the time as UTC rather than fail.
    Utc.from_utc_datetime(&local)
}

/// When the cap stops being used up, or `None` if a message may be sent now. The
/// window is today and the six days before in the customer's calendar; a message drops
/// out of it at the start of the seventh local day after the one it was sent on.
pub fn cap_frees_at(
    sent: &[DateTime<Utc>],
    cap: u32,
    zone: Tz,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let today = now.with_timezone(&zone).date_naive();
    let counted = |from: NaiveDate| {
        let start = start_of_day(zone, from);
        sent.iter().filter(|t| **t >= start && **t <= now).count()
    };
    let first_day = today.checked_sub_days(Days::new(CAP_DAYS - 1))?;
    if counted(first_day) < cap as usize {
        return None;
    }
    (1..=CAP_DAYS).find_map(|ahead| {
        let window_start = first_day.checked_add_days(Days::new(ahead))?;
        (counted(window_start) < cap as usize).then(|| {
            let day = today.checked_add_days(Days::new(ahead))?;
            Some(start_of_day(zone, day))
        })?
    })
}

/// When the quiet hours around `now` end, or `None` if it is not quiet hours. `start`
/// and `end` are local times; `start > end` means the quiet hours cross midnight.
pub fn quiet_ends_at(
    zone: Tz,
    start: NaiveTime,
    end: NaiveTime,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if start == end {
        return None;
    }
    let local = now.with_timezone(&zone);
    let (date, time) = (local.date_naive(), local.time());
    let end_on = |date: NaiveDate| local_instant(zone, date.and_time(end));
    if start < end {
        return (start <= time && time < end).then(|| end_on(date));
    }
    if time >= start {
        // Evening: quiet until tomorrow's end.
        date.succ_opt().map(end_on)
    } else if time < end {
        // Small hours: quiet until this morning's end.
        Some(end_on(date))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::rules::Reason;
    use crate::policy::Basis;

    fn at(zone: Tz, local: &str) -> DateTime<Utc> {
        let naive = NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M").unwrap();
        zone.from_local_datetime(&naive)
            .earliest()
            .unwrap()
            .with_timezone(&Utc)
    }

    fn hm(text: &str) -> NaiveTime {
        NaiveTime::parse_from_str(text, "%H:%M").unwrap()
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    const BERLIN: Tz = chrono_tz::Europe::Berlin;
    const SAO_PAULO: Tz = chrono_tz::America::Sao_Paulo;
    const RIYADH: Tz = chrono_tz::Asia::Riyadh;

    #[test]
    fn quiet_hours_within_a_day_and_across_midnight() {
        // (zone, quiet start, quiet end, now local, expected end local)
        let cases: [(Tz, &str, &str, &str, Option<&str>); 9] = [
            (RIYADH, "22:00", "08:00", "2026-06-10 21:59", None),
            (
                RIYADH,
                "22:00",
                "08:00",
                "2026-06-10 22:00",
                Some("2026-06-11 08:00"),
            ),
            (
                RIYADH,
                "22:00",
                "08:00",
                "2026-06-10 23:30",
                Some("2026-06-11 08:00"),
            ),
            (
                RIYADH,
                "22:00",
                "08:00",
                "2026-06-11 00:00",
                Some("2026-06-11 08:00"),
            ),
            (
                RIYADH,
                "22:00",
                "08:00",
                "2026-06-11 07:59",
                Some("2026-06-11 08:00"),
            ),
            (RIYADH, "22:00", "08:00", "2026-06-11 08:00", None),
            (RIYADH, "13:00", "15:00", "2026-06-11 12:59", None),
            (
                RIYADH,
                "13:00",
                "15:00",
                "2026-06-11 13:00",
                Some("2026-06-11 15:00"),
            ),
            (RIYADH, "13:00", "15:00", "2026-06-11 15:00", None),
        ];
        for (zone, start, end, now, expected) in cases {
            assert_eq!(
                quiet_ends_at(zone, hm(start), hm(end), at(zone, now)),
                expected.map(|e| at(zone, e)),
                "{start}-{end} at {now}"
            );
        }
    }

    #[test]
    fn quiet_hours_over_daylight_saving_changes() {
        // Berlin springs forward on 2026-03-29 at 02:00 → 03:00: a quiet hour ending
        // at 02:30 ends when the clocks jump, 01:00 UTC.
        assert_eq!(
            quiet_ends_at(
                BERLIN,
                hm("22:00"),
                hm("02:30"),
                at(BERLIN, "2026-03-28 23:00")
            ),
            Some(utc("2026-03-29T01:00:00Z"))
        );
        // And falls back on 2026-10-25 at 03:00 → 02:00: 02:30 happens twice; the
        // first one counts.
        assert_eq!(
            quiet_ends_at(
                BERLIN,
                hm("22:00"),
                hm("02:30"),
                at(BERLIN, "2026-10-24 23:00")
            ),
            Some(utc("2026-10-25T00:30:00Z"))
        );
        // 22:00–08:00 over the spring change is an hour shorter in UTC.
        let night = quiet_ends_at(
            BERLIN,
            hm("22:00"),
            hm("08:00"),
            at(BERLIN, "2026-03-28 22:00"),
        )
        .unwrap()
            - at(BERLIN, "2026-03-28 22:00");
        assert_eq!(night, chrono::Duration::hours(9));
        // São Paulo's DST (until 2019) began at midnight: 2018-11-04 00:00 did not
        // happen. Quiet hours ending at 00:30 that night end at 01:00 local, 03:00 UTC.
        assert_eq!(
            quiet_ends_at(
                SAO_PAULO,
                hm("22:00"),
                hm("00:30"),
                at(SAO_PAULO, "2018-11-03 23:00")
            ),
            Some(utc("2018-11-04T03:00:00Z"))
        );
        // Since 2019 São Paulo keeps UTC−3 all year.
        assert_eq!(
            quiet_ends_at(
                SAO_PAULO,
                hm("22:00"),
                hm("08:00"),
                at(SAO_PAULO, "2026-11-01 23:00")
            ),
            Some(utc("2026-11-02T11:00:00Z"))
        );
    }

    #[test]
    fn the_cap_counts_today_and_the_six_days_before_in_the_customers_calendar() {
        let now = at(RIYADH, "2026-06-10 12:00");
        let sent =
            |days: &[&str]| -> Vec<DateTime<Utc>> { days.iter().map(|d| at(RIYADH, d)).collect() };
        // Three a week: two sent, one left.
        assert_eq!(
            cap_frees_at(
                &sent(&["2026-06-05 09:00", "2026-06-09 09:00"]),
                3,
                RIYADH,
                now
            ),
            None
        );
        // At the cap: the oldest (June 4, the window's first day) drops out at the start
        // of June 11.
        let three = sent(&["2026-06-04 09:00", "2026-06-06 09:00", "2026-06-09 09:00"]);
        assert_eq!(
            cap_frees_at(&three, 3, RIYADH, now),
            Some(at(RIYADH, "2026-06-11 00:00"))
        );
        // One sent on June 3 is outside the window already.
        let outside = sent(&["2026-06-03 23:59", "2026-06-06 09:00", "2026-06-09 09:00"]);
        assert_eq!(cap_frees_at(&outside, 3, RIYADH, now), None);
        // Boundary: a message at local midnight of the window's first day counts.
        let boundary = sent(&["2026-06-04 00:00", "2026-06-06 09:00", "2026-06-09 09:00"]);
        assert!(cap_frees_at(&boundary, 3, RIYADH, now).is_some());
        // Several on the oldest days: the cap frees when enough have dropped out.
        let crowded = sent(&[
            "2026-06-04 09:00",
            "2026-06-05 09:00",
            "2026-06-05 10:00",
            "2026-06-10 08:00",
        ]);
        assert_eq!(
            cap_frees_at(&crowded, 3, RIYADH, now),
            Some(at(RIYADH, "2026-06-12 00:00"))
        );
        // Messages "sent" after now (clock skew) do not count.
        let future = sent(&["2026-06-10 13:00", "2026-06-10 14:00", "2026-06-10 15:00"]);
        assert_eq!(cap_frees_at(&future, 3, RIYADH, now), None);
    }

    #[test]
    fn the_cap_window_follows_local_midnight_across_a_dst_change() {
        // In Berlin the window's days are local days: a message at 00:30 local on
        // 2026-03-23 (23:30 UTC the day before) counts for the week up to March 29.
        let now = at(BERLIN, "2026-03-29 12:00");
        let sent = vec![at(BERLIN, "2026-03-23 00:30")];
        assert_eq!(
            cap_frees_at(&sent, 1, BERLIN, now),
            Some(at(BERLIN, "2026-03-30 00:00"))
        );
        // The start of a day that begins in a gap is the gap's end.
        assert_eq!(
            start_of_day(SAO_PAULO, NaiveDate::from_ymd_opt(2018, 11, 4).unwrap()),
            utc("2018-11-04T03:00:00Z")
        );
    }

    /// Name, facts, clock, allowed, reason, next allowed at.
    type Case<'a> = (
        &'a str,
        ChannelFacts<'a>,
        Clock,
        bool,
        ReachReason,
        Option<DateTime<Utc>>,
    );

    fn decision(allowed: bool, reason: Reason) -> Decision {
        Decision {
            allowed,
            reason,
            basis: Basis::OptIn,
            jurisdiction: "default".into(),
            record: None,
        }
    }

    #[test]
    fn channels_come_in_the_customers_order_else_the_default() {
        let own = ["whatsapp", "email"];
        let default = ["email", "sms", "messenger"];
        let opted_in = ["push", "email"];
        // The customer's own order, then what they opted in to that it leaves out.
        assert_eq!(
            channels_in_order(&own, &default, &opted_in, None),
            ["whatsapp", "email", "push"]
        );
        // No order of their own: the country's.
        assert_eq!(
            channels_in_order(&[], &default, &opted_in, None),
            ["email", "sms", "messenger", "push"]
        );
        // Asked for: ranked by the order, the unranked after them as asked.
        assert_eq!(
            channels_in_order(
                &own,
                &default,
                &opted_in,
                Some(&["line", "email", "whatsapp"])
            ),
            ["whatsapp", "email", "line"]
        );
        assert_eq!(
            channels_in_order(&[], &default, &[], Some(&["telegram", "sms", "viber"])),
            ["sms", "telegram", "viber"]
        );
        assert!(channels_in_order::<&str>(&[], &[], &[], None).is_empty());
    }

    #[test]
    fn each_refusal_reason() {
        let now = at(RIYADH, "2026-06-10 23:00");
        let quiet = Clock {
            zone: RIYADH,
            quiet: Some((hm("22:00"), hm("08:00"))),
        };
        let daytime = Clock {
            zone: RIYADH,
            quiet: None,
        };
        let yes = decision(true, Reason::ConsentGranted);
        let no = decision(false, Reason::ConsentDenied);
        let full = [at(RIYADH, "2026-06-10 09:00")];
        let base = ChannelFacts {
            decision: &yes,
            needs_opt_in: false,
            opted_in: false,
            cap: None,
            sent: &[],
        };
        let cases: [Case<'_>; 7] = [
            ("allowed", base, daytime, true, ReachReason::Allowed, None),
            (
                "the gate denies",
                ChannelFacts {
                    decision: &no,
                    ..base
                },
                daytime,
                false,
                ReachReason::PurposeDenied,
                None,
            ),
            (
                "opt-in needed and missing",
                ChannelFacts {
                    needs_opt_in: true,
                    ..base
                },
                daytime,
                false,
                ReachReason::ChannelOptInRequired,
                None,
            ),
            (
                "opt-in needed and given",
                ChannelFacts {
                    needs_opt_in: true,
                    opted_in: true,
                    ..base
                },
                daytime,
                true,
                ReachReason::Allowed,
                None,
            ),
            (
                "cap used up",
                ChannelFacts {
                    cap: Some(1),
                    sent: &full,
                    ..base
                },
                daytime,
                false,
                ReachReason::WeeklyCapReached,
                Some(at(RIYADH, "2026-06-17 00:00")),
            ),
            (
                "quiet hours",
                base,
                quiet,
                false,
                ReachReason::QuietHours,
                Some(at(RIYADH, "2026-06-11 08:00")),
            ),
            (
                "cap frees inside quiet hours: the quiet hours' end",
                ChannelFacts {
                    cap: Some(1),
                    sent: &full,
                    ..base
                },
                quiet,
                false,
                ReachReason::WeeklyCapReached,
                Some(at(RIYADH, "2026-06-17 08:00")),
            ),
        ];
        for (name, facts, clock, allowed, reason, next) in cases {
            let got = reach(&facts, &clock, now);
            assert_eq!(
                (got.allowed, got.reason, got.next_allowed_at),
                (allowed, reason, next),
                "{name}"
            );
        }
    }
}
