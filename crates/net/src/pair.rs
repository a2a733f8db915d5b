//! Two WebRTC link tasks in one process with the signaling between them done by channels: the
//! smallest real WebRTC setup, for tests and the open-time benchmark.

use bassline_sync::PeerId;
use tokio::sync::mpsc;

use crate::{
    Error,
    link::{EVENT_QUEUE, TransportEvent},
    rtc::{Ended, RtcConfig, Signal, run_peer},
};

/// Starts a link between peers `a` (host, answering) and `b` (offering) on this machine;
/// returns each side's event stream: `Identity`, then `Up` once both channels are open, then
/// frames.
pub fn loopback_pair(
    cfg: RtcConfig,
    a: PeerId,
    b: PeerId,
) -> (
    mpsc::Receiver<TransportEvent>,
    mpsc::Receiver<TransportEvent>,
) {
    let (ea, ra) = mpsc::channel(EVENT_QUEUE);
    let (eb, rb) = mpsc::channel(EVENT_QUEUE);
    for (e, me) in [(&ea, a), (&eb, b)] {
        let _ = e.try_send(TransportEvent::Identity { me, host: Some(a) });
    }
    let (to_a, from_b) = mpsc::channel::<Signal>(64);
    let (to_b, from_a) = mpsc::channel::<Signal>(64);
    let (out_a, mut outs_a) = mpsc::channel::<(PeerId, Signal)>(64);
    let (out_b, mut outs_b) = mpsc::channel::<(PeerId, Signal)>(64);
    tokio::spawn(async move {
        while let Some((_, s)) = outs_a.recv().await {
            if to_b.send(s).await.is_err() {
                return;
            }
        }
    });
    tokio::spawn(async move {
        while let Some((_, s)) = outs_b.recv().await {
            if to_a.send(s).await.is_err() {
                return;
            }
        }
    });
    // b offers: the peer with the higher number always offers (see p2p's mesh rule). A link
    // that fails is reported, so a caller waiting for `Up` hears why instead of hanging.
    for (cfg, peer, offerer, signals, out, events) in [
        (cfg.clone(), b, false, from_b, out_a, ea),
        (cfg, a, true, from_a, out_b, eb),
    ] {
        tokio::spawn(async move {
            let ended = run_peer(
                cfg,
                peer,
                offerer,
                signals,
                out,
                events.clone(),
                Default::default(),
            )
            .await;
            let reason = match ended {
                Ended::Failed(reason) => reason,
                other => format!("{other:?}"),
            };
            let _ = events
                .send(TransportEvent::Fatal(Error::WebRtc(reason)))
                .await;
        });
    }
    (ra, rb)
}
