//! The access-token verifier (`rill_media::access::token`): never panics on any text; on any
//! header and payload *signed with the secret* (so the fuzzer gets past the signature into the
//! header and claims parsers) it accepts only HS256 tokens whose claims parse, and what it
//! accepts re-mints to a token that verifies to the same claims (round trip). The query and
//! shape helpers never panic either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rill_media::access::{looks_like_token, token_from_query, Signer};

const NOW: u64 = 1_800_000_000;

fuzz_target!(|data: &[u8]| {
    let signer = Signer::new(b"fuzz secret");
    let text = String::from_utf8_lossy(data);
    let _ = looks_like_token(&text);
    let _ = token_from_query(&text);
    assert!(signer.verify(&text, NOW).is_err() || text.split('.').count() == 3);
    // First byte: where the header ends; the rest: header then payload, signed.
    let Some((&split, rest)) = data.split_first() else { return };
    let split = (split as usize).min(rest.len());
    let (header, payload) = rest.split_at(split);
    let token = signer.sign_parts(header, payload);
    if let Ok(claims) = signer.verify(&token, NOW) {
        assert!(std::str::from_utf8(header).is_ok_and(|h| h.contains("HS256")));
        assert!(claims.exp > NOW);
        let again = signer.mint(&claims);
        assert_eq!(signer.verify(&again, NOW), Ok(claims));
    }
});
