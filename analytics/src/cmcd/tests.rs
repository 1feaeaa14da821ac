//! Reports as real players send them, the CTA-5004-B examples, hostile input, and a
//! cross-check of the syntax against the `sfv` crate.

use super::*;

/// What `@svta/cml-cmcd` 2.3.2 (the encoder in dash.js 5.2.1; hls.js 1.7.4 bundles 2.4.0 with
/// the same output) writes for a v2 `t` heartbeat of an LL-HLS session: 21 keys, 219 bytes.
/// Generated with `encodeCmcd(data, { reportingMode: 'event' })`.
pub(crate) const EVENT_V2: &str = r#"bl=(8300),br=(2500),bsa=(1),bsd=(720),bsda=(720),cid="live/cam1",dfa=3,e=t,ltc=2300,msd=812,mtp=(48100),pb=(2500),pt=29188,sf=h,sid="6e2fb550-c457-11e9-bb97-0800200c9a66",sn=17,st=ll,sta=p,tb=(4500),ts=1764752430000,v=2"#;

/// `toCmcdQuery` of the same library for a v1 segment request (the players' default mode).
pub(crate) const QUERY_V1: &str = "CMCD=bl%3D8300%2Cbr%3D2500%2Ccid%3D%22live%2Fcam1%22%2Cd%3D2000%2Cdl%3D8300%2Cmtp%3D48100%2Cnor%3D%2210904.1.m4s%22%2Cot%3Dv%2Csf%3Dh%2Csid%3D%226e2fb550-c457-11e9-bb97-0800200c9a66%22%2Cst%3Dl%2Ctb%3D4500";

/// The same request in v2: note the parentheses `encodeURIComponent` leaves unencoded.
const QUERY_V2: &str = "CMCD=bl%3D(8300)%2Cbr%3D(2500)%2Ccid%3D%22live%2Fcam1%22%2Cd%3D2000%2Cdl%3D8300%2Cmtp%3D(48100)%2Cnor%3D(%2210904.1.m4s%22)%2Cot%3Dv%2Csf%3Dh%2Csid%3D%226e2fb550-c457-11e9-bb97-0800200c9a66%22%2Cst%3Dll%2Csta%3Dp%2Ctb%3D(4500)%2Cv%3D2";

const SID: &str = "6e2fb550-c457-11e9-bb97-0800200c9a66";

/// CTA-5004-B §8 examples (as transcribed in common-media-library
/// `libs/cmcd/test/data/CTA_5004_B_EXAMPLES.ts`).
const CTA_5004_B: &[&str] = &[
    r#"bl=(2000),br=(3000;v),cid="content-id-123",d=4000,dl=1000,mtp=(15000),nor=("next-seg.mp4"),ot=v,rtp=12000,sf=d,sid="session-id-123",st=v,sta=p,tb=(6000;v),v=2"#,
    r#"bl=(2000),br=(320),cid="content-id-123",d=2000,mtp=(15000),ot=a,sid="session-id-123",st=v,v=2"#,
    r#"cid="content-id-123",sid="session-id-123",v=2"#,
    r#"cid="content-id-123",ot=m,sf=d,sid="session-id-123",st=v,su,v=2"#,
    r#"bl=(0),br=(3000;v),cid="content-id-123",mtp=(15000),nor=("seg-1.m4v" "seg-2.m4v"),ot=i,sid="session-id-123",st=v,sta=s,su,v=2"#,
    r#"bl=(4000),br=(3000;v),cid="content-id-123",d=4000,msd=200,mtp=(15000),nor=("seg-3.m4v" "seg-4.m4v"),ot=v,sid="session-id-123",st=v,sta=p,v=2"#,
    r#"cid="content-id-123",ec=("DRM_NOT_SUPPORTED" "PLAYBACK_FAILED"),sid="session-id-123",sta=f,v=2"#,
    r#"bl=(0;v 2000;a),bs,cid="content-id-123",ot=v,sid="session-id-123",sta=r,v=2"#,
    r#"cid="ad-555",nr,ot=v,sid="session-common-1",v=2"#,
    r#"bg,bl=(2100;v 1800;a),br=(3000;v 164;a),bs,bsa=(3;v),bsd=(1200;v 100;a),bsda=(4150;v 300;a),cid="content-id-123",cs="g48djn236sk2",d=4000,dfa=32,dl=1000,ec=("2001"),lb=(500;v 32;a),ltc=13500,msd=1700,mtp=(15000;v 6000;a),nor=("next-seg.mp4"),nr,ot=v,pb=(2000;v 164;a),pr=1.1,pt=632782,rtp=12000,sf=d,sid="session-id-123",sn=0,st=l,sta=p,su,tb=(6000;v 350;a),tbl=(2000;v 2000;a),tpb=(5000;v 164;a),v=2"#,
    "e=t,ts=1764752400000,v=2",
    r#"bl=(0),cid="content-id-123",e=t,h="example.com",pt=0,sid="session-id-123",sn=1,sta=s,su,ts=1764752400000,v=2"#,
    r#"bl=(0),br=(4200;v 256;a),cid="content-id-123",e=t,h="example.com",lb=(523;v 64;a),mtp=(82000;v 55000;a),pb=(4200;v 256;a),pr=0,pt=111000,sf=d,sid="session-id-123",sn=5,st=v,sta=e,tb=(4200;v 256;a),tpb=(4200;v 256;a),ts=1764752520000,v=2"#,
    r#"cid="bbb",cmsdd="ZXRwPTEyNTAwO3J0dD0zNTttYj02MDAwO3JkPTIwMA==",cmsds="c2lkPSI5YTNiLTIxY2QiO2JyPTQ1MDA7ZD00MDAwO290PXY7c3Q9dg==",e=rr,nor=("video/segment-6.m4v"),ot=v,rc=200,sid="session1",ts=1763657019723,ttfb=180,ttlb=200,url="video/segment-5.m4v",v=2"#,
    r#"cid="content-id-123",e=e,ec=("CODEC_NOT_SUPPORTED"),sid="session-id-123",ts=1764269150213,v=2"#,
    r#"bs,bsd=(1500),cid="content-id-123",e=ps,sid="session-id-123",sta=p,ts=1764269152389,v=2"#,
    r#"bl=(0),cid="content-id-123",e=ps,pt=30000,sid="session-id-123",sta=k,ts=1764269150529,v=2"#,
    r#"cid="ad-content-555",e=sk,sid="session-id-123",ts=1764269150076,v=2"#,
    r#"cid="movie-123",e=abs,nr,sid="session-id-123",ts=1764269150186,v=2"#,
];

/// CML's own fixtures (`libs/cmcd/test/data/CMCD_STRING_EVENT.ts`, `CMCD_STRING_REQUEST.ts`):
/// every v2 key plus custom keys, an escaped quote and a custom token.
const CML_EVENT: &str = r#"ab=2500,bg,bl=5000,br=200,bs,bsd=2000,cdn="cdn-provider",cid="content-id",com.example-exists,com.example-hello="world",com.example-quote="\"Quote\"",com.example-testing=1234,com.example-token=s,cs="123456",dfa=5,e=t,ec=("ERR001" "ERR002"),lab=200,lb=100,ltc=1500,msd=2500,mtp=10000,pb=1000,pt=45000,sf=d,sid="session-id",sn=1,st=v,sta=p,tab=3000,tb=5000,tbl=8000,tpb=4000,ts=1640995200000,v=2"#;
const CML_REQUEST: &str = r#"ab=(2500),bg,bl=(5000),br=(200),bs,bsd=(2000),cdn="cdn-provider",cid="content-id",com.example-exists,com.example-hello="world",com.example-quote="\"Quote\"",com.example-testing=1234,com.example-token=s,cs="123456",d=325,dfa=5,dl=10000,ec=("ERR001" "ERR002"),lab=(200),lb=(100),ltc=1500,msd=2500,mtp=(10000),nor=("../testing/3.m4v"),ot=m,pb=(1000),pt=45000,rtp=8000,sf=d,sid="session-id",sn=1,st=v,sta=p,su,tab=(3000),tb=(5000),tbl=(8000),tpb=(4000),ts=1640995200000,v=2"#;

/// A v1 request from dash.js's reference player, as captured by montevideo-tech/cmcd-validator
/// (`genericTestCases.js`): every v1 key, `nor` percent-encoded inside the string.
const DASHJS_V1_QUERY: &str = "CMCD=bl%3D21300%2Cbr%3D3200%2Cbs%2Ccid%3D%22faec5fc2-ac30-11ea-bb37-0242ac130002%22%2Cd%3D4004%2Cdl%3D18500%2Cmtp%3D48100%2Cnor%3D%22..%252F300kbps%252Ftrack.m4v%22%2Cnrr%3D%2212323-48763%22%2Cot%3Dv%2Cpr%3D1.08%2Crtp%3D12000%2Csf%3Dd%2Csid%3D%226e2fb550-c457-11e9-bb97-0800200c9a66%22%2Cst%3Dv%2Csu%2Ctb%3D6000";

#[test]
fn v2_heartbeat_from_cml() {
    assert_eq!(EVENT_V2.len(), 219);
    let c = parse(EVENT_V2).unwrap();
    assert_eq!(c.version, 2);
    assert_eq!(c.event, Some(EventType::TimeInterval));
    assert_eq!(c.ts, Some(1_764_752_430_000));
    assert_eq!(c.sid.as_deref(), Some(SID));
    assert_eq!(c.cid.as_deref(), Some("live/cam1"));
    assert_eq!((c.bl, c.br, c.tb, c.mtp, c.pb), (Some(8300), Some(2500), Some(4500), Some(48100), Some(2500)));
    assert_eq!((c.bsa, c.bsd, c.bsda, c.dfa), (Some(1), Some(720), Some(720), Some(3)));
    assert_eq!((c.ltc, c.msd, c.pt, c.sn), (Some(2300), Some(812), Some(29188), Some(17)));
    assert_eq!(c.sf, Some(StreamingFormat::Hls));
    assert_eq!(c.st, Some(StreamType::LowLatency));
    assert_eq!(c.sta, Some(PlayerState::Playing));
    assert_eq!(c.skipped_keys, 0);
}

#[test]
fn v1_query_as_players_send_it() {
    let q = format!("_HLS_msn=10904&_HLS_part=1&{QUERY_V1}");
    let c = from_query(&q).unwrap().unwrap();
    assert_eq!(c.version, 1);
    assert_eq!(c.sid.as_deref(), Some(SID));
    assert_eq!(c.cid.as_deref(), Some("live/cam1"));
    assert_eq!(c.ot, Some(ObjectType::Video));
    assert_eq!(
        (c.br, c.tb, c.d, c.bl, c.dl, c.mtp),
        (Some(2500), Some(4500), Some(2000), Some(8300), Some(8300), Some(48100))
    );
    assert_eq!(c.st, Some(StreamType::Live));
    assert!(!c.su);

    let c2 = from_query(QUERY_V2).unwrap().unwrap();
    assert_eq!(c2.version, 2);
    assert_eq!((c2.br, c2.bl, c2.mtp), (Some(2500), Some(8300), Some(48100)));
    assert_eq!(c2.sta, Some(PlayerState::Playing));
    assert_eq!(c2.st, Some(StreamType::LowLatency));

    let d = from_query(DASHJS_V1_QUERY).unwrap().unwrap();
    assert!(d.bs && d.su);
    assert_eq!(d.pr, Some(1.08));
    assert_eq!(d.rtp, Some(12000));
    assert_eq!(d.sf, Some(StreamingFormat::Dash));
    assert_eq!(d.st, Some(StreamType::Vod));
    assert_eq!(d.cid.as_deref(), Some("faec5fc2-ac30-11ea-bb37-0242ac130002"));
}

#[test]
fn headers_merge_and_match_the_query() {
    // cml-cmcd 2.3.2 `toCmcdHeaders` of the v2 request above.
    let headers: [(&str, &[u8]); 5] = [
        ("cmcd-request", br#"bl=(8300),dl=8300,mtp=(48100),nor=("10904.1.m4s"),sta=p"#),
        ("CMCD-Object", b"br=(2500),d=2000,ot=v,tb=(4500)"),
        ("Accept", b"*/*"),
        ("CMCD-Session", br#"cid="live/cam1",sf=h,sid="6e2fb550-c457-11e9-bb97-0800200c9a66",st=ll,v=2"#),
        ("CMCD-Status", b""),
    ];
    let h = from_headers(headers).unwrap().unwrap();
    assert_eq!(h, from_query(QUERY_V2).unwrap().unwrap());
    assert!(from_headers([("Accept", &b"*/*"[..])]).is_none());
    let bad = from_headers([("CMCD-Object", &b"br=(2500"[..]), ("CMCD-Session", &b"v=2"[..])]);
    assert!(matches!(bad, Some(Err(CmcdError::Syntax { at: 8, .. }))));
    // CML's header fixture (`CMCD_HEADERS.ts`): custom keys in every shard.
    let cml: [(&str, &[u8]); 4] = [
        ("CMCD-Object", br#"ab=(2500),br=(200),com.example-hello="world",d=325,lab=(200),lb=(100),ot=m,tab=(3000),tb=(5000),tpb=(4000)"#),
        ("CMCD-Status", br#"bg,bs,bsd=(2000),cdn="cdn-provider",com.example-exists,ec=("ERR001" "ERR002"),pt=45000,rtp=8000"#),
        ("CMCD-Request", br#"bl=(5000),com.example-quote="\"Quote\"",com.example-token=s,cs="123456",dfa=5,dl=10000,ltc=1500,mtp=(10000),nor=("../testing/3.m4v"),pb=(1000),sn=1,sta=p,su,tbl=(8000),ts=1640995200000"#),
        ("CMCD-Session", br#"cid="content-id",com.example-testing=1234,msd=2500,sf=d,sid="session-id",st=v,v=2"#),
    ];
    assert_eq!(from_headers(cml).unwrap().unwrap(), parse(CML_REQUEST).unwrap());
}

#[test]
fn cml_fixtures_with_custom_keys() {
    for s in [CML_EVENT, CML_REQUEST] {
        let c = parse(s).unwrap();
        assert_eq!(c.version, 2);
        assert_eq!(c.sid.as_deref(), Some("session-id"));
        assert_eq!(c.ec.as_deref(), Some("ERR001"));
        assert_eq!((c.br, c.bl, c.bsd, c.mtp), (Some(200), Some(5000), Some(2000), Some(10000)));
        assert!(c.bg && c.bs);
        assert_eq!(c.skipped_keys, 0);
    }
    // The URL-encoded form (`CMCD_QUERY.ts`).
    let q = "CMCD=bg%2Cbl%3D%285000%29%2Cbr%3D%28200%29%2Cbs%2Cbsd%3D%282000%29%2Ccdn%3D%22cdn-provider%22%2Ccid%3D%22content-id%22%2Ccom.example-exists%2Ccom.example-hello%3D%22world%22%2Ccom.example-quote%3D%22%5C%22Quote%5C%22%22%2Ccom.example-testing%3D1234%2Ccom.example-token%3Ds%2Ccs%3D%22123456%22%2Cd%3D325%2Cdfa%3D5%2Cdl%3D10000%2Cec%3D%28%22ERR001%22%20%22ERR002%22%29%2Clb%3D%28100%29%2Cltc%3D1500%2Cmsd%3D2500%2Cmtp%3D%2810000%29%2Cnor%3D%28%22..%2Ftesting%2F3.m4v%22%29%2Cot%3Dv%2Cpb%3D%281000%29%2Cpt%3D45000%2Crtp%3D8000%2Csf%3Dd%2Csid%3D%22session-id%22%2Csn%3D1%2Cst%3Dv%2Csta%3Dp%2Csu%2Ctb%3D%285000%29%2Ctbl%3D%288000%29%2Ctpb%3D%284000%29%2Cv%3D2";
    let c = from_query(q).unwrap().unwrap();
    assert_eq!(c.ot, Some(ObjectType::Video));
    assert_eq!(c.ec.as_deref(), Some("ERR001"));
    assert!(c.su);
}

#[test]
fn cta_5004_b_examples() {
    let all: Vec<Cmcd> = CTA_5004_B.iter().map(|s| parse(s).unwrap()).collect();
    assert!(all.iter().all(|c| c.version == 2 && c.skipped_keys == 0));
    // 8.1.8: every key at once; the video track comes first in the lists.
    let full = &all[9];
    assert_eq!(
        (full.bl, full.br, full.bsa, full.bsd, full.bsda),
        (Some(2100), Some(3000), Some(3), Some(1200), Some(4150))
    );
    assert_eq!((full.pr, full.dfa, full.ltc, full.sn), (Some(1.1), Some(32), Some(13500), Some(0)));
    assert!(full.bg && full.bs && full.nr && full.su);
    assert_eq!(full.ec.as_deref(), Some("2001"));
    // 8.2.3: a response-received event.
    let rr = &all[13];
    assert_eq!(rr.event, Some(EventType::ResponseReceived));
    assert_eq!((rr.rc, rr.ttfb, rr.ttlb), (Some(200), Some(180), Some(200)));
    // 8.2.2: an ended session reports pr=0 (an integer where a decimal is expected).
    assert_eq!(all[12].pr, Some(0.0));
    assert_eq!(all[12].sta, Some(PlayerState::Ended));
    assert_eq!(all[6].sta, Some(PlayerState::FatalError));
    assert_eq!(all[6].ec.as_deref(), Some("DRM_NOT_SUPPORTED"));
    assert_eq!(all[17].event, Some(EventType::Skip));
    assert_eq!(all[18].event, Some(EventType::AdBreakStart));
}

#[test]
fn event_body_lines() {
    let body = format!(
        "{EVENT_V2}\r\n\r\n  \ne=ps,sid=\"s1\",sta=r,ts=1,v=2\nnot cmcd!\n{}\ne=zz,sid=\"s1\",ts=3,v=2\n",
        "a".repeat(MAX_LINE + 1)
    );
    let got: Vec<_> = lines(body.as_bytes()).collect();
    assert_eq!(got.len(), 5);
    assert_eq!(got[0].as_ref().unwrap().sid.as_deref(), Some(SID));
    assert_eq!(got[1].as_ref().unwrap().sta, Some(PlayerState::Rebuffering));
    assert!(matches!(got[2], Err(CmcdError::Syntax { at: 4, .. })));
    assert!(matches!(got[3], Err(CmcdError::LineTooLong { len: 4097, limit: MAX_LINE })));
    assert_eq!(got[4].as_ref().unwrap().event, Some(EventType::Other("zz".into())));
    assert_eq!(lines(b"").count(), 0);
    assert_eq!(lines(b"\n\n").count(), 0);
    // No trailing newline (what CTA-5004-B asks for) reads the same.
    assert_eq!(lines(b"e=t,v=2\ne=t,v=2").filter(|r| r.is_ok()).count(), 2);
}

#[test]
fn limits() {
    let sid = "x".repeat(SID_MAX);
    assert_eq!(parse(&format!("sid=\"{sid}\"")).unwrap().sid.unwrap().len(), 64);
    assert_eq!(
        parse(&format!("sid=\"{sid}x\"")).unwrap_err(),
        CmcdError::TooLong { key: "sid", len: 65, limit: SID_MAX }
    );
    // Escapes count once.
    assert!(parse(&format!("sid=\"{}\"", "\\\"".repeat(64))).is_ok());
    let cid = "c".repeat(CID_MAX + 1);
    assert!(matches!(parse(&format!("cid=\"{cid}\"")), Err(CmcdError::TooLong { key: "cid", .. })));
    // A 10 KB sid is rejected by size before anything is copied.
    let huge = format!("sid=\"{}\"", "s".repeat(10_000));
    assert!(matches!(parse(&huge), Err(CmcdError::LineTooLong { .. })));
    assert!(matches!(
        from_query(&format!("CMCD={}", "%41".repeat(MAX_LINE + 1))),
        Some(Err(CmcdError::LineTooLong { len: 4097, .. }))
    ));
    // Integers: 15 digits at most (RFC 8941).
    assert_eq!(parse("ts=999999999999999").unwrap().ts, Some(999_999_999_999_999));
    assert!(parse("ts=1000000000000000").is_err());
}

#[test]
fn wrong_types_are_skipped_and_counted() {
    let c = parse(r#"br="x",bl=-1,ot=zz,su=5,sid=1,d=4000,v=0,pr=-1.5,st="v",e=?1,ec=(1),ts=1.5"#).unwrap();
    assert_eq!(c.skipped_keys, 10);
    assert_eq!(c.d, Some(4000));
    assert_eq!(c.ts, Some(2));
    assert_eq!((c.br, c.bl, c.ot, c.sid, c.st, c.event), (None, None, None, None, None, None));
    assert!(!c.su);
    assert_eq!(c.version, 1);
    // Out of range for the field.
    assert_eq!(parse("br=99999999999").unwrap().skipped_keys, 1);
    assert_eq!(parse("rc=70000").unwrap().rc, None);
    // Decimals are rounded (Shaka has sent `d=6066.66`), `?0` is false, empty lists are absent.
    let c = parse("d=6066.66,su=?0,bs=?1,br=(),bl=(;x)").unwrap_err();
    assert!(matches!(c, CmcdError::Syntax { at: 32, .. }));
    let c = parse("d=6066.66,su=?0,bs=?1,br=()").unwrap();
    assert_eq!((c.d, c.su, c.bs, c.br, c.skipped_keys), (Some(6067), false, true, None, 1));
    // Unknown and custom keys, parameters on anything.
    let c = parse(r#"com.example-x=(1 2);p,zz=:AQID:,*k=?0,br=3000;v;q=1.5,sid="a";b"#).unwrap();
    assert_eq!((c.br, c.skipped_keys), (Some(3000), 0));
    assert_eq!(c.sid.as_deref(), Some("a"));
    // The last value of a repeated key wins, as in RFC 8941.
    assert_eq!(parse("br=1,br=2").unwrap().br, Some(2));
}

#[test]
fn syntax_errors_carry_the_offset() {
    for (s, at) in [
        ("br=3000,", 8),
        ("br=3000,,bl=1", 8),
        ("Br=1", 0),
        ("br=1 bl=2", 5),
        ("sid=\"abc", 8),
        ("sid=\"a\\x\"", 7),
        ("sid=\"é\"", 5),
        ("br=(1,2)", 5),
        ("br=1.", 4),
        ("br=1.2345", 8),
        ("br=-", 4),
        ("su=?2", 4),
        ("x=@1659578233", 2),
        ("x=%\"a\"", 2),
        ("x=:a:", 4),
    ] {
        match parse(s) {
            Err(CmcdError::Syntax { at: got, .. }) => assert_eq!(got, at, "{s}"),
            other => panic!("{s}: {other:?}"),
        }
    }
    assert_eq!(parse("").unwrap(), Cmcd::default());
    assert_eq!(parse("  br=1  ").unwrap().br, Some(1));
    assert_eq!(parse("br=1 ,\tbl=2").unwrap().bl, Some(2));
}

#[test]
fn query_argument_lookup_and_stripping() {
    assert!(from_query("a=1&b=2").is_none());
    assert!(from_query("").is_none());
    assert!(from_query("XCMCD=br%3D1").is_none());
    assert_eq!(from_query("?CMCD=br%3D1&x").unwrap().unwrap().br, Some(1));
    assert_eq!(from_query("CMCD").unwrap().unwrap(), Cmcd::default());
    // `+` is a space (URLSearchParams), a stray `%` stays a `%` (then a syntax error here).
    assert_eq!(from_query("CMCD=br%3D(1+2)").unwrap().unwrap().br, Some(1));
    assert!(from_query("CMCD=br%3D%zz").unwrap().is_err());

    assert_eq!(strip_query("a=1&b=2"), Cow::Borrowed("a=1&b=2"));
    assert_eq!(strip_query(&format!("_HLS_msn=5&{QUERY_V1}&_HLS_part=1")), "_HLS_msn=5&_HLS_part=1");
    assert_eq!(strip_query(&format!("{QUERY_V1}&x=1")), "x=1");
    assert_eq!(strip_query(QUERY_V1), "");
    assert_eq!(strip_query("?CMCD&a=CMCD"), "?a=CMCD");
    assert_eq!(strip_query("?CMCDX=1"), "?CMCDX=1");
    // Found by the cmcd fuzz target: a `?CMCD` argument that becomes the first one.
    for q in ["CMCD&?CMCD&?", "CMCD=x&?CMCD=y&a", "CMCD&??CMCD"] {
        let stripped = strip_query(q);
        assert!(from_query(&stripped).is_none(), "{q:?} → {stripped:?}");
    }
    assert_eq!(strip_query("CMCD&?CMCD&?"), "?");
    assert_eq!(strip_query("CMCD&??CMCD"), "??CMCD");
    assert_eq!(strip_query("a&CMCD&?CMCD"), "a&?CMCD");
}

#[test]
fn tokens_round_trip() {
    for t in ["m", "a", "v", "av", "i", "c", "tt", "k", "o"] {
        assert_eq!(ObjectType::from_token(t.as_bytes()).unwrap().token(), t);
    }
    for t in ["s", "p", "k", "r", "a", "w", "e", "f", "q", "d"] {
        assert_eq!(PlayerState::from_token(t.as_bytes()).unwrap().token(), t);
    }
    for t in [
        "ps", "bc", "pr", "e", "t", "c", "b", "m", "um", "pe", "pc", "rr", "as", "ae", "abs", "abe", "sk", "ce",
        "other",
    ] {
        assert_eq!(EventType::from_token(t.as_bytes()).unwrap().token(), t);
    }
    assert_eq!(HEADERS.join(", "), "CMCD-Request, CMCD-Object, CMCD-Status, CMCD-Session");
}

// --- cross-check with the `sfv` crate -------------------------------------------------------

fn sfv_accepts(s: &[u8]) -> bool {
    sfv::Parser::new(s).with_version(sfv::Version::Rfc8941).parse_dictionary::<sfv::Dictionary>().is_ok()
}

fn ours_accepts(s: &[u8]) -> bool {
    sf::parse_dictionary(s, |_, _| {}).is_ok()
}

#[test]
fn same_verdict_as_sfv_on_a_corpus() {
    let mut corpus: Vec<String> = CTA_5004_B.iter().map(|s| s.to_string()).collect();
    corpus.extend([EVENT_V2, CML_EVENT, CML_REQUEST].map(String::from));
    corpus.extend(
        [
            "",
            " ",
            "  a",
            "a  ",
            "a=1,",
            ",a=1",
            "a=1,,b=2",
            "a=1, b=2",
            "a=1 ,b=2",
            "a=1\t,\tb=2",
            "a=1,\t",
            "\ta=1",
            "a=1\t",
            "a= 1",
            "a =1",
            "a=(1  2 )",
            "a=( 1)",
            "a=()",
            "a=();p",
            "a=(1)(2)",
            "a=(1 2",
            "a=(1,2)",
            "a=((1))",
            "a;b;c=?0",
            "a; b",
            "a ;b",
            "a;B",
            "a=1;",
            "a=1;b=",
            "a=1;b=()",
            "a=\"\"",
            "a=\"\\\\\"",
            "a=\"\\\"",
            "a=\"\\n\"",
            "a=\"\x7f\"",
            "a=\"\t\"",
            "a=tok",
            "a=*tok",
            "a=t:o/k",
            "a=t(k",
            "a=t\"k",
            "a=1t",
            "a=0.1",
            "a=-0.1",
            "a=-",
            "a=-.1",
            "a=.1",
            "a=1.",
            "a=1.1234",
            "a=123456789012.1",
            "a=1234567890123.1",
            "a=123456789012345",
            "a=1234567890123456",
            "a=-123456789012345",
            "a=00001",
            "a=1e5",
            "a=?",
            "a=?0",
            "a=?1",
            "a=?t",
            "a=::",
            "a=:AA:",
            "a=:AA=:",
            "a=:AA==:",
            "a=:A:",
            "a=:AAA=:",
            "a=:AAAA=:",
            "a=:AAAAA===:",
            "a=:A=A=:",
            "a=:=:",
            "a=:====:",
            "a=:AB*:",
            "a=:aGVsbG8=:",
            "a=:aGVsbG8:",
            "a=:aGVsbG8",
            "a=@1",
            "a=%\"x\"",
            "*=1",
            "a*b.c-d_e=1",
            "1a=1",
            "_a=1",
            "A=1",
            "a=1,a=2",
            "a=1 b=2",
            "a=1;b=2;c",
            "a=(1;x 2;y);z=\"q\"",
            "é=1",
            "a=\"é\"",
            "a=1\n",
            "a=1\r",
            "a=\u{0}",
            "a=(\"x\" tok ?1 :AA: 1.5 -3)",
        ]
        .map(String::from),
    );
    for s in &corpus {
        assert_eq!(ours_accepts(s.as_bytes()), sfv_accepts(s.as_bytes()), "{s:?}");
    }
}

/// Random dictionaries built from RFC 8941's pieces (and broken ones): the same accept/reject as
/// `sfv` on all of them, and the same members when both accept.
#[test]
fn same_verdict_as_sfv_on_generated_input() {
    const PIECES: &[&str] = &[
        "a",
        "br",
        "sid",
        "com.x-y",
        "*",
        "=",
        "=",
        ",",
        ", ",
        " ",
        "\t",
        ";",
        ";v",
        "(",
        ")",
        "1",
        "-",
        "0.5",
        ".",
        "123456789012",
        "3",
        "\"",
        "\\",
        "\"x\"",
        "tok",
        "t/k:",
        "?",
        "?0",
        "?1",
        ":",
        ":AQ==:",
        "AB",
        "=",
        "A",
        "é",
        "\x01",
        "(1 2)",
        "(\"a\";v 3;a)",
    ];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut accepted, mut total) = (0, 0);
    for _ in 0..100_000 {
        let n = 1 + next() % 12;
        let mut s = String::new();
        for _ in 0..n {
            s.push_str(PIECES[(next() % PIECES.len() as u64) as usize]);
        }
        let ours = ours_accepts(s.as_bytes());
        assert_eq!(ours, sfv_accepts(s.as_bytes()), "{s:?}");
        total += 1;
        if ours {
            accepted += 1;
            let mut keys = Vec::new();
            sf::parse_dictionary(s.as_bytes(), |k, _| keys.push(k)).unwrap();
            let dict: sfv::Dictionary =
                sfv::Parser::new(&s).with_version(sfv::Version::Rfc8941).parse_dictionary().unwrap();
            let uniq: std::collections::BTreeSet<&[u8]> = keys.into_iter().collect();
            assert_eq!(uniq.len(), dict.len(), "{s:?}");
        }
    }
    // The generator must exercise both sides.
    assert!(accepted > total / 50 && accepted < total / 2, "{accepted}/{total}");
}

/// Parsed values agree with `sfv` (numbers, strings, tokens, first list items).
#[test]
fn same_values_as_sfv() {
    for s in CTA_5004_B.iter().chain([EVENT_V2, CML_EVENT, CML_REQUEST].iter()) {
        let dict: sfv::Dictionary = sfv::Parser::new(s).parse_dictionary().unwrap();
        sf::parse_dictionary(s.as_bytes(), |k, v| {
            let key = std::str::from_utf8(k).unwrap();
            let theirs = &dict[key];
            let first = match theirs {
                sfv::ListEntry::Item(i) => Some(&i.bare_item),
                sfv::ListEntry::InnerList(l) => l.items.first().map(|i| &i.bare_item),
            };
            let same = match (v.first(), first) {
                (None, None) => true,
                (Some(Bare::Integer(a)), Some(sfv::BareItem::Integer(b))) => a == i64::from(*b),
                (Some(Bare::Decimal(a)), Some(sfv::BareItem::Decimal(b))) => a == f64::from(*b),
                (Some(Bare::String { raw, escaped }), Some(sfv::BareItem::String(b))) => {
                    sf::unescape(raw, escaped) == b.as_str()
                }
                (Some(Bare::Token(a)), Some(sfv::BareItem::Token(b))) => a == b.as_str().as_bytes(),
                (Some(Bare::Boolean(a)), Some(sfv::BareItem::Boolean(b))) => a == *b,
                _ => false,
            };
            assert!(same, "{key} in {s}");
        })
        .unwrap();
    }
}
