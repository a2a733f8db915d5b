//! Whatever a peer sends, a session neither panics nor lets its state drift from what its
//! own engine can reproduce: arbitrary frames go to a guest and to a host, with valid frames
//! mixed in so that the fuzzer reaches past the decoder.
#![no_main]

use std::time::Duration;

use bassline_core::Network;
use bassline_sync::{Channel, Config, Session};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut host = Session::host(1, Config::default(), Network::new());
    let mut guest = Session::guest(2, Some(1), Config::default());
    let t = Duration::from_millis(1);
    host.handle_connected(t, 2);
    guest.handle_connected(t, 1);
    // Frames are length-prefixed pieces of the input; the first byte picks channel and target.
    let mut rest = data;
    let mut now = t;
    while rest.len() >= 2 {
        let (head, tail) = rest.split_at(2);
        let len = (head[1] as usize).min(tail.len());
        let (frame, after) = tail.split_at(len);
        rest = after;
        let channel = if head[0] & 1 == 0 { Channel::Reliable } else { Channel::Unreliable };
        now += Duration::from_millis(u64::from(head[0] >> 2));
        if head[0] & 2 == 0 {
            guest.handle_receive(now, 1, channel, frame);
        } else {
            host.handle_receive(now, 2, channel, frame);
        }
        guest.handle_timeout(now);
        host.handle_timeout(now);
        while let Some(tx) = host.poll_transmit() {
            guest.handle_receive(now, 1, tx.channel, &tx.frame);
        }
        while let Some(tx) = guest.poll_transmit() {
            host.handle_receive(now, 2, tx.channel, &tx.frame);
        }
        while host.poll_event().is_some() {}
        while guest.poll_event().is_some() {}
    }
    // The host's state is always one its own engine accepts.
    Network::import(&host.network().export()).expect("the host's state stays valid");
});
