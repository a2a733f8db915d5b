//! A real webrtc-rs link on loopback: both channels open and carry frames both ways.

use std::time::{Duration, Instant};

use bassline_net::{TransportEvent, pair::loopback_pair, rtc::RtcConfig};
use bassline_sync::Channel;

fn cfg(fast: bool) -> RtcConfig {
    RtcConfig {
        ice_servers: Vec::new(),
        bind: vec!["127.0.0.1:0".into()],
        fast_connect: fast,
    }
}

async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("bounded wait (not a timing assertion)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_channels_open_and_carry_frames() {
    for fast in [true, false] {
        let start = Instant::now();
        let (mut a, mut b) = loopback_pair(cfg(fast), 1, 2);
        for side in [&mut a, &mut b] {
            assert!(matches!(
                side.recv().await,
                Some(TransportEvent::Identity { .. })
            ));
        }
        let Some(TransportEvent::Up(la)) = bounded(a.recv()).await else {
            panic!("a: expected Up")
        };
        let Some(TransportEvent::Up(lb)) = bounded(b.recv()).await else {
            panic!("b: expected Up")
        };
        eprintln!("fast={fast}: open in {:?}", start.elapsed());
        la.send(Channel::Reliable, b"hello".to_vec()).unwrap();
        lb.send(Channel::Unreliable, b"beat".to_vec()).unwrap();
        match bounded(b.recv()).await {
            Some(TransportEvent::Frame { frame, channel, .. }) => {
                assert_eq!(
                    (frame.as_slice(), channel),
                    (&b"hello"[..], Channel::Reliable)
                );
            }
            other => panic!("b: expected a frame, got {other:?}"),
        }
        match bounded(a.recv()).await {
            Some(TransportEvent::Frame { frame, channel, .. }) => {
                assert_eq!(
                    (frame.as_slice(), channel),
                    (&b"beat"[..], Channel::Unreliable)
                );
            }
            other => panic!("a: expected a frame, got {other:?}"),
        }
        // The link reports its path and, once ICE has measured one, its round-trip time.
        bounded(async {
            while la.info().rtt.is_none() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        assert_eq!(la.info().path, bassline_net::Path::Direct);
        // Letting go of one end closes the link, and both sides hear of it.
        drop(la);
        assert!(matches!(
            bounded(a.recv()).await,
            Some(TransportEvent::Down { .. })
        ));
        assert!(matches!(
            bounded(b.recv()).await,
            Some(TransportEvent::Down { .. })
        ));
    }
}
