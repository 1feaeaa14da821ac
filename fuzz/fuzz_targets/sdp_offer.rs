//! WHIP/WHEP offer handling: our bounded SDP checks and codec choice never panic, accept only
//! offers within the limits, and whatever they accept is also handed to webrtc-rs's own SDP
//! parser (as `POST /whip` and `/whep` do) without a panic. The same bytes go through the UDP
//! mux's STUN parsing. The WHEP video plan and the answer's candidate placement take them too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rill_webrtc::sdp::{self, Kind, Offer, MAX_OFFER_LEN};
use rill_webrtc::udp_mux::{Route, UdpMux};

fuzz_target!(|data: &[u8]| {
    let mut mux = UdpMux::default();
    mux.add("abcd".to_string(), 1u8);
    let from = std::net::SocketAddr::from(([127, 0, 0, 1], 5000));
    match mux.route(data, from) {
        Route::Session(id) => assert_eq!(id, 1),
        _ => {}
    }
    let Ok(offer) = Offer::parse(data) else { return };
    assert!(data.len() <= MAX_OFFER_LEN);
    assert!(!offer.media.is_empty());
    for section in &offer.media {
        let _ = sdp::choose_whip(section);
        let _ = sdp::choose_opus(section);
        for source in [(0x42, 0xe0), (0x4d, 0x40), (0x64, 0x00)] {
            if let Some(c) = sdp::choose_whep_h264(section, source) {
                assert!(c.is_h264_mode1());
                assert!(sdp::h264_compatible(c.h264_profile().unwrap(), source));
            }
        }
        // The WHEP video plan sends what it says, in a codec the section offers.
        let vp8 = rill_media::CodecConfig::Vp8 { width: 16, height: 16 };
        if let Ok(Some(plan)) = sdp::plan_whep_video(Some(section), Some(&vp8), true) {
            assert_eq!(plan.origin, sdp::VideoOrigin::Source);
            assert_eq!(sdp::SendCodec::of(&plan.codec), Some(plan.send));
        }
    }
    let _ = offer.section(Kind::Video);
    let text = std::str::from_utf8(data).expect("parse checked UTF-8");
    // Moving candidates between sections keeps every line of the text.
    let lines = |t: &str| t.split("\r\n").filter(|l| !l.is_empty()).count();
    assert_eq!(lines(&sdp::candidates_in_accepted_section(text)), lines(text));
    let _ = rtc::peer_connection::sdp::RTCSessionDescription::offer(text.to_owned());
});
