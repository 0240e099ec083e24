use serde_json::json;
use std::time::Instant;
use tessera_pql::{compile, parse, EvalContext, EventSet};
fn main() {
    let now: i64 = 1_736_942_400_000;
    let kinds = [
        "web.webpagedetails.pageViews",
        "commerce.productViews",
        "commerce.purchases",
        "commerce.checkouts",
    ];
    let mut seed: u64 = 42;
    let docs: Vec<_> = (0..200).map(|i| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let ago = (seed >> 20) % (90 * 86_400_000);
        json!({"timestamp": tessera_pql::time::format_timestamp(now - ago as i64), "eventType": kinds[i % 4]})
    }).collect();
    let set = EventSet::new(docs);
    let ts: Vec<_> = set.events().iter().map(|e| e.timestamp).collect();
    println!("first {:?} last {:?}", ts.first(), ts.last());
    let profile = json!({});
    let ctx = EvalContext::new(now);
    for src in [
        "xEvent[timestamp occurs < 30 days before now].count()",
        "xEvent[eventType = \"commerce.purchases\"].count()",
        "xEvent.count()",
        "xEvent[timestamp occurs < 30 days before now and eventType = \"commerce.purchases\"].count()",
    ] {
        let p = compile(&parse(src).unwrap()).unwrap();
        let n = 20000;
        let t = Instant::now();
        let mut r = serde_json::Value::Null;
        for _ in 0..n { r = p.evaluate(&profile, &set, &ctx); }
        println!("{:>8.0} ns  {r}  {src}", t.elapsed().as_nanos() as f64 / n as f64);
    }
}
