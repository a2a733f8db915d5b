//! A state file from a user: parse, check and import must never panic, and whatever imports
//! must export and import again to the same hash.
#![no_main]

use bassline_core::{Network, StateDocument};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(doc) = StateDocument::from_json(text) else { return };
    let Ok(net) = Network::import(&doc) else { return };
    let again = Network::import(&net.export()).expect("an export always imports");
    assert_eq!(again.state_hash(), net.state_hash());
});
