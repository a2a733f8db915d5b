//! Remote mode over WebSocket: the client transport, and the socket loop both ends share.
//!
//! The server (`bassline serve`, at `/remote`) is a permanent host. On connecting it sends one
//! text message, `{"type":"welcome","peer":N,"host":H,"token":"..."}`: the client's peer id,
//! the server's, and a token that gets the same peer id back on reconnecting
//! (`/remote?resume=TOKEN`). After that every message is binary: one byte naming the channel
//! (0 reliable, 1 unreliable), then one session frame. Both channels share the one ordered
//! connection; the tag keeps their frames apart for reassembly.

use std::time::Duration;

use bassline_sync::{Channel, PeerId};
use futures_util::{Sink, SinkExt, Stream, StreamExt, future};
use tokio_tungstenite::tungstenite::{self, Message};

use crate::{
    Error,
    link::{Events, Link, LinkEnds, LinkId, LinkInfo, Path, TransportEvent, TransportStatus},
    mesh::{Backoff, random_seed},
    transport::Transport,
};

pub use bassline_protocol::remote::Welcome;

/// Puts the channel tag in front of a frame.
pub fn tag(channel: Channel, frame: &[u8]) -> Vec<u8> {
    bassline_protocol::remote::tag(channel as u8, frame)
}

/// Splits a binary message into its channel and frame; `None` for a malformed one.
pub fn untag(message: &[u8]) -> Option<(Channel, &[u8])> {
    let (c, frame) = bassline_protocol::remote::untag(message)?;
    let channel = match c {
        bassline_protocol::remote::RELIABLE => Channel::Reliable,
        _ => Channel::Unreliable,
    };
    Some((channel, frame))
}

/// Serves one link over a socket of binary messages until either side closes it: reports
/// `Up`, then each frame, then `Down`. Both ends of remote mode run this.
pub async fn serve_socket<S, E>(socket: S, peer: PeerId, events: Events)
where
    S: Stream<Item = Result<Vec<u8>, E>> + Sink<Vec<u8>> + Unpin,
{
    let (link, ends) = Link::new(
        peer,
        LinkId::fresh(),
        LinkInfo {
            path: Path::Direct,
            rtt: None,
        },
    );
    let id = link.id;
    if events.send(TransportEvent::Up(link)).await.is_err() {
        return;
    }
    let LinkEnds {
        mut reliable,
        mut unreliable,
        close,
        info: _info,
    } = ends;
    let (mut sink, mut stream) = socket.split();
    loop {
        tokio::select! {
            () = close.notified() => break,
            f = reliable.recv() => match f {
                Some(f) => if sink.send(tag(Channel::Reliable, &f)).await.is_err() { break },
                None => break,
            },
            f = unreliable.recv() => match f {
                Some(f) => if sink.send(tag(Channel::Unreliable, &f)).await.is_err() { break },
                None => break,
            },
            m = stream.next() => match m {
                Some(Ok(m)) => match untag(&m) {
                    Some((channel, frame)) => {
                        if !crate::link::deliver(&events, peer, id, channel, frame.to_vec()).await {
                            break;
                        }
                    }
                    // A malformed message from a peer ends its link rather than the process.
                    None => break,
                },
                Some(Err(_)) | None => break,
            },
        }
    }
    let _ = sink.close().await;
    let _ = events.send(TransportEvent::Down { peer, link: id }).await;
}

/// The remote-mode client transport: connects to `url` (e.g. `ws://127.0.0.1:8080/remote`),
/// and reconnects with backoff and its token whenever the connection drops.
pub fn remote(url: String) -> Transport {
    Transport::spawn(move |events| run_client(url, events))
}

async fn run_client(url: String, events: Events) {
    let mut backoff = Backoff::new(
        Duration::from_millis(250),
        Duration::from_secs(10),
        random_seed(),
    );
    let mut token: Option<String> = None;
    let mut ever = false;
    let mut me: Option<PeerId> = None;
    loop {
        let target = match &token {
            Some(t) => format!("{url}?resume={t}"),
            None => url.clone(),
        };
        // Small frames, often several at once: no Nagle delay (see p2p.rs).
        match tokio_tungstenite::connect_async_with_config(target.as_str(), None, true).await {
            Ok((mut ws, _)) => {
                let welcome = match ws.next().await {
                    Some(Ok(Message::Text(t))) => serde_json::from_str::<Welcome>(&t).ok(),
                    _ => None,
                };
                if let Some(w) = welcome {
                    ever = true;
                    backoff.reset();
                    token = Some(w.token.clone());
                    if me != Some(w.peer) {
                        me = Some(w.peer);
                        let _ = events
                            .send(TransportEvent::Identity {
                                me: w.peer,
                                host: Some(w.host),
                            })
                            .await;
                    }
                    let _ = events
                        .send(TransportEvent::Status(TransportStatus::Connected))
                        .await;
                    let socket = ws
                        .with(|b: Vec<u8>| {
                            future::ready(Ok::<_, tungstenite::Error>(Message::binary(b)))
                        })
                        .filter_map(|m| {
                            future::ready(match m {
                                Ok(Message::Binary(b)) => Some(Ok::<_, ()>(b.to_vec())),
                                Ok(Message::Close(_)) | Err(_) => Some(Err(())),
                                Ok(_) => None,
                            })
                        });
                    serve_socket(socket, w.host, events.clone()).await;
                }
            }
            Err(e) if !ever => {
                let _ = events
                    .send(TransportEvent::Fatal(Error::Unreachable {
                        url,
                        reason: e.to_string(),
                    }))
                    .await;
                return;
            }
            Err(e) => tracing::info!(error = %e, "remote server reconnect failed"),
        }
        let delay = backoff.next_delay();
        let _ = events
            .send(TransportEvent::Status(TransportStatus::Reconnecting {
                retry_in: delay,
                attempt: backoff.attempt(),
            }))
            .await;
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_their_channel_and_junk_is_refused() {
        for channel in [Channel::Reliable, Channel::Unreliable] {
            let m = tag(channel, b"\x01\x00abc");
            assert_eq!(untag(&m), Some((channel, &b"\x01\x00abc"[..])));
        }
        assert_eq!(untag(b""), None);
        assert_eq!(untag(b"\x02abc"), None);
    }
}
