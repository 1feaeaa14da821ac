//! CMCD parsing throughput: Rill's hand-written parser against `sfv` (RFC 8941 into an
//! `sfv::Dictionary`, the general-purpose baseline) on what players send.
//!
//! ```sh
//! nice -n 19 cargo bench -p rill-analytics --bench cmcd
//! ```
//!
//! Criterion reports time per line and lines/s ("elem/s"); the throughput per core is that
//! number, as each iteration runs on one thread.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;

/// A v2 `t` heartbeat as `@svta/cml-cmcd` 2.3.2 encodes it (dash.js 5.2.1, hls.js 1.7.4):
/// 21 keys, 219 bytes.
const EVENT_V2: &str = r#"bl=(8300),br=(2500),bsa=(1),bsd=(720),bsda=(720),cid="live/cam1",dfa=3,e=t,ltc=2300,msd=812,mtp=(48100),pb=(2500),pt=29188,sf=h,sid="6e2fb550-c457-11e9-bb97-0800200c9a66",sn=17,st=ll,sta=p,tb=(4500),ts=1764752430000,v=2"#;

/// A v1 LL-HLS part request's query (the players' default: `CMCD` query argument).
const QUERY_V1: &str = "_HLS_msn=10904&_HLS_part=1&CMCD=bl%3D8300%2Cbr%3D2500%2Ccid%3D%22live%2Fcam1%22%2Cd%3D2000%2Cdl%3D8300%2Cmtp%3D48100%2Cnor%3D%2210904.1.m4s%22%2Cot%3Dv%2Csf%3Dh%2Csid%3D%226e2fb550-c457-11e9-bb97-0800200c9a66%22%2Cst%3Dl%2Ctb%3D4500";

fn sfv_dictionary(s: &str) -> sfv::Dictionary {
    sfv::Parser::new(s).parse_dictionary().unwrap()
}

/// What `sfv` needs before it can parse a query value: find and percent-decode it.
fn decode_query(q: &str) -> String {
    let v = q.split('&').find_map(|a| a.strip_prefix("CMCD=")).unwrap();
    let mut out = Vec::with_capacity(v.len());
    let b = v.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let h = u8::from_str_radix(&v[i + 1..i + 3], 16).unwrap();
            out.push(h);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn bench(c: &mut Criterion) {
    assert_eq!(EVENT_V2.len(), 219);
    assert_eq!(sfv_dictionary(EVENT_V2).len(), 21);
    let body: String = std::iter::repeat_n(EVENT_V2, 100).collect::<Vec<_>>().join("\n");

    let mut g = c.benchmark_group("cmcd_event_line_v2");
    g.throughput(Throughput::Elements(1));
    g.bench_function("rill", |b| b.iter(|| rill_analytics::cmcd::parse(black_box(EVENT_V2)).unwrap()));
    g.bench_function("sfv", |b| b.iter(|| sfv_dictionary(black_box(EVENT_V2))));
    g.finish();

    let mut g = c.benchmark_group("cmcd_event_body_100_lines");
    g.throughput(Throughput::Elements(100));
    g.bench_function("rill", |b| {
        b.iter(|| rill_analytics::cmcd::lines(black_box(body.as_bytes())).filter(|r| r.is_ok()).count())
    });
    g.finish();

    let mut g = c.benchmark_group("cmcd_request_query_v1");
    g.throughput(Throughput::Elements(1));
    g.bench_function("rill", |b| b.iter(|| rill_analytics::cmcd::from_query(black_box(QUERY_V1)).unwrap().unwrap()));
    g.bench_function("sfv", |b| b.iter(|| sfv_dictionary(&decode_query(black_box(QUERY_V1)))));
    g.bench_function("rill_strip_query", |b| b.iter(|| rill_analytics::cmcd::strip_query(black_box(QUERY_V1))));
    g.finish();

    let mut g = c.benchmark_group("cmsd_static");
    g.throughput(Throughput::Elements(1));
    let cmsd = rill_analytics::cmsd::CmsdStatic {
        at: Some(1_764_752_400_123),
        ht: Some(980),
        d: Some(1000),
        br: Some(2500),
        ot: Some(rill_analytics::cmcd::ObjectType::Video),
        st: Some(rill_analytics::cmcd::StreamType::LowLatency),
        su: false,
        n: None,
    };
    g.bench_function("header_value", |b| b.iter_batched(|| cmsd.clone(), |c| c.header_value(), BatchSize::SmallInput));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
