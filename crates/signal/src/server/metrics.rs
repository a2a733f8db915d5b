//! `/metrics` in the Prometheus text exposition format, written by hand: a dozen lines do not
//! justify a metrics crate and its registry.

use std::{fmt::Write as _, sync::atomic::Ordering};

use super::DriverCounters;
use crate::{ErrorCode, Metrics};

pub(super) fn render(m: &Metrics, d: &DriverCounters) -> String {
    let mut s = String::with_capacity(2048);
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = writeln!(
            s,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    metric(
        "signal_connections",
        "gauge",
        "Open WebSocket connections.",
        m.connections as u64,
    );
    metric(
        "signal_peers",
        "gauge",
        "Peers known (connected or within their reconnect grace).",
        m.peers as u64,
    );
    metric("signal_rooms", "gauge", "Live rooms.", m.rooms as u64);
    metric(
        "signal_connections_accepted_total",
        "counter",
        "WebSocket connections accepted.",
        d.accepted.load(Ordering::Relaxed),
    );
    metric(
        "signal_frames_received_total",
        "counter",
        "Data frames received.",
        d.frames_in.load(Ordering::Relaxed),
    );
    metric(
        "signal_frames_sent_total",
        "counter",
        "Frames written to sockets.",
        d.frames_out.load(Ordering::Relaxed),
    );
    metric(
        "signal_rooms_created_total",
        "counter",
        "Rooms created.",
        m.rooms_created,
    );
    metric(
        "signal_rooms_expired_total",
        "counter",
        "Rooms closed after inactivity.",
        m.rooms_expired,
    );
    metric(
        "signal_joins_total",
        "counter",
        "Successful joins.",
        m.joins,
    );
    metric(
        "signal_resumes_total",
        "counter",
        "Reconnects that kept their place.",
        m.resumes,
    );
    metric(
        "signal_messages_relayed_total",
        "counter",
        "Offers, answers and candidates accepted for relay.",
        m.relayed,
    );
    metric(
        "signal_messages_dropped_total",
        "counter",
        "Messages dropped undelivered (older than the ttl, or over a queue cap).",
        m.dropped + d.dropped_stale.load(Ordering::Relaxed),
    );
    metric(
        "signal_messages_carried_total",
        "counter",
        "Relayed messages handed to another instance through Redis (--redis).",
        m.carried,
    );
    metric(
        "signal_store_errors_total",
        "counter",
        "Requests to Redis that failed because it could not be reached (--redis).",
        m.store_errors,
    );
    let _ = writeln!(
        s,
        "# HELP signal_rejections_total Requests refused, by reason.\n# TYPE signal_rejections_total counter"
    );
    for code in ErrorCode::ALL {
        let n = m.rejections.get(&code).copied().unwrap_or(0);
        let _ = writeln!(
            s,
            "signal_rejections_total{{reason=\"{}\"}} {n}",
            code.as_str()
        );
    }
    s
}
