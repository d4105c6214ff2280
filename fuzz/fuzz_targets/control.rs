//! Arbitrary bytes as one control socket request line: the server's
//! parser (`control::socket::parse_request`) and, for requests that parse,
//! the runtime's `show` answers against example plans never panic, and
//! every reply is an object with a bool `ok` and an `error` message when
//! it is false (`xconnect::runtime::control::fuzz_request_line`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    xconnect::runtime::control::fuzz_request_line(data);
});
