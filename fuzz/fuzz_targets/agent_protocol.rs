//! The agent's JSON protocol: each side reads one line at a time from the other (the agent a
//! `Call`, the controller a `Hello`, then `Reply`s). Any line decodes or is an error, never a
//! panic, and whatever decodes encodes back to a line that decodes to the same message. The
//! controller's own reader (the greeting with sudo's or su's password prompt, then replies,
//! short and parsed-while-read long ones) takes the same bytes as an agent's output.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;
use settle_modules::agent::{Call, Hello, Reply};

fn round_trip<T: Serialize + DeserializeOwned>(line: &str) {
    let Ok(message) = serde_json::from_str::<T>(line) else {
        return;
    };
    let encoded = serde_json::to_string(&message).expect("a decoded message encodes");
    assert!(!encoded.contains('\n'), "a message is one line");
    let again: T = serde_json::from_str(&encoded).expect("an encoded message decodes");
    assert_eq!(
        serde_json::to_value(&again).ok(),
        serde_json::to_value(&message).ok(),
        "a message survives a round trip"
    );
}

fuzz_target!(|data: &[u8]| {
    settle_engine::connection::fuzz_agent_output(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for line in text.lines() {
        round_trip::<Call>(line.trim());
        round_trip::<Reply>(line.trim());
        round_trip::<Hello>(line.trim());
    }
});
