#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tq_fuzz::node_messages::run(data));
