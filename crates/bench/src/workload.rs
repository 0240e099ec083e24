//! Workload definitions shared by the benchmarks: the HTTP harness (`tessera bench`) and the
//! in-process benches of other crates measure the same things.

/// Computed attributes over the generated web events (name, PQL, lookback count and unit):
/// sums, counts, minimum, maximum and most-recent values, filtered and not, from a day to six
/// months.
pub const COMPUTED_ATTRIBUTES: [(&str, &str, u32, &str); 10] = [
    (
        "spend7d",
        r#"xEvent[eventType = "commerce.purchases"].sum(commerce.order.priceTotal)"#,
        7,
        "DAYS",
    ),
    (
        "spend24h",
        r#"xEvent[eventType = "commerce.purchases"].sum(commerce.order.priceTotal)"#,
        24,
        "HOURS",
    ),
    (
        "spend6m",
        "xEvent.sum(commerce.order.priceTotal)",
        6,
        "MONTHS",
    ),
    (
        "views7d",
        r#"xEvent[eventType = "web.webpagedetails.pageViews"].count()"#,
        7,
        "DAYS",
    ),
    ("events4w", "xEvent.count()", 4, "WEEKS"),
    (
        "bigorders",
        "xEvent[commerce.order.priceTotal >= 100.0].count()",
        7,
        "DAYS",
    ),
    (
        "maxorder",
        "xEvent.max(commerce.order.priceTotal)",
        4,
        "WEEKS",
    ),
    (
        "minorder",
        r#"xEvent[eventType = "commerce.purchases"].min(commerce.order.priceTotal)"#,
        7,
        "DAYS",
    ),
    (
        "lastpage",
        r#"xEvent[eventType = "web.webpagedetails.pageViews"].topN(timestamp, 1).head().web.webPageDetails.name"#,
        7,
        "DAYS",
    ),
    (
        "lastorder",
        "xEvent.topN(timestamp, 1).head().commerce.order.priceTotal",
        6,
        "MONTHS",
    ),
];
