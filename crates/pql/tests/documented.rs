//! The 55 documented expressions of aep-api.md §6.3 (shared by the test files).
#![allow(dead_code)]

/// (number in §6.3, expression verbatim).
pub const DOCUMENTED: &[(u32, &str)] = &[
    (
        1,
        r#"homeAddress.stateProvince = workAddress.stateProvince"#,
    ),
    (
        2,
        r#"$1.homeAddress.stateProvince = $1.homeAddress.stateProvince"#,
    ),
    (
        3,
        r#"(Profile) => Profile.homeAddress.stateProvince = Profile.workAddress.stateProvince"#,
    ),
    (4, r#"homeAddress.countryISO = "CA""#),
    (5, r#"homeAddress.countryISO != "CA""#),
    (6, r#"person.birthMonth >= 3"#),
    (
        7,
        r#"homeAddress.countryISO = "CA" and person.birthYear = 1985"#,
    ),
    (8, r#"not (homeAddress.countryISO = "CA")"#),
    (9, r#"if (homeAddress.countryISO = "CA", 1, 2)"#),
    (10, r#"city like "%es%""#),
    (11, r#"person.name.startsWith("Joe")"#),
    (12, r#"person.emailAddress.endsWith(".com")"#),
    (13, r#"person.emailAddress.doesNotContain("2010@gm")"#),
    (14, r#"person.name.matches("(?i)^John")"#),
    (15, r#"emailAddress.regexGroup("@(\w+)", 1)"#),
    (16, r#"person.birthMonth in [3, 6, 9]"#),
    (17, r#"person.birthMonth notIn [3, 6, 9]"#),
    (
        18,
        r#"person.favoriteColors.intersects(["red", "blue", "green"])"#,
    ),
    (
        19,
        r#"person1.favoriteColors.intersection(person2.favoriteColors) = ["red", "blue", "green"]"#,
    ),
    (
        20,
        r#"person.favoriteCities.subsetOf(person.visitedCities)"#,
    ),
    (21, r#"person.eatenFoods.supersetOf(["sushi", "pizza"])"#),
    (22, r#"person.orders.storeId.distinct().count() > 1"#),
    (23, r#"orders.topN(price, 5).head()"#),
    (24, r#"identityMap.get("example@example.com")"#),
    (25, r#"person.homeAddress.isNotNull()"#),
    (26, r#"person.age % 5 = 0"#),
    (27, r#"orders.sum(order.price)"#),
    (28, r#"person.birthdate.getMonth() = 6"#),
    (
        29,
        r#"person.birthday.getYear() in [1991, 1992, 1993, 1994, 1995]"#,
    ),
    (30, r#"product.saleDate occurs last week"#),
    (
        31,
        r#"product.saleDate occurs between date(2015, 1, 8) and date(2017, 7, 1)"#,
    ),
    (32, r#"product.saleDate occurs = 3 hours before now"#),
    (33, r#"person.birthday occurs = 3 days before today"#),
    (34, r#"xEvent[productListItems[SKU="PS"]]"#),
    (
        35,
        r#"xEvent[productListItems[SKU="PS" or ^^.person.gender="female"]]"#,
    ),
    (
        36,
        r#"exists E from xEvent where (E.commerce.item.price > 50), I from E.productListItems where I.SKU = "PS""#,
    ),
    (
        37,
        r#"let S = (sum X.commerce.order.priceTotal over X from xEvent where X.commerce.order.currencyCode = "USD") in (S > 100 and S < 1000)"#,
    ),
    (
        38,
        r#"select var1 from xEvent where var1._experience.analytics.endUser.firstWeb.webPageDetails.isHomePage = true"#,
    ),
    (
        39,
        r#"CHAIN(xEvent, timestamp, [C0: WHAT(eventType.equals("commerce.checkouts", false)) WHEN(today)])"#,
    ),
    (40, r#"homeAddress.country.equals("US", false)"#),
    (
        41,
        r#"workAddress.country.equals("US", false) and CHAIN(xEvent, timestamp, [C0: WHAT(eventType.equals("directMarketing.emailClicked", false)) WHEN(today), C1: WHAT(eventType.equals("commerce.checkouts", false)) WHEN(today)])"#,
    ),
    (
        42,
        r#"inSegment("e3be6d7f-1727-401f-a41e-c296b45f607a") and CHAIN(xEvent, timestamp, [C0: WHAT(eventType.equals("commerce.checkouts", false)) WHEN(<= 24 hours before now)])"#,
    ),
    (
        43,
        r#"inSegment("7deb246a-49b4-4687-95f9-6316df049948") and inSegment("9e1646bb-57ff-4309-ba59-17d6c5bab6a1")"#,
    ),
    (
        44,
        r#"chain(xEvent, timestamp, [A: WHAT(eventType = "transaction") WHEN(< 7 days before now)])"#,
    ),
    (
        45,
        r#"xEvent[(timestamp occurs < 7 days before now) and eventType="download" and contentType = "image"].count()"#,
    ),
    (
        46,
        r#"xEvent[(timestamp occurs < 7 days before now) and eventType="transaction" and category = "sporting goods"].sum(commerce.order.priceTotal)"#,
    ),
    (
        47,
        r#"xEvent[(timestamp occurs < 7 days before now) and eventType="download"].groupBy(product).map((K, G) => mapEntry(K, G.count()))"#,
    ),
    (
        48,
        r#"xEvent[(timestamp occurs < 7 days before now) and eventType="download"].groupBy(product).map((K, G) => mapEntry(K, {"count": G.count(), "sum": G.sum(commerce.order.priceTotal)}))"#,
    ),
    (49, r#"if(person.gender = "female", 60, 65)"#),
    (
        50,
        r#"if(homeAddress.countryCode in ["US","MX","CA"], "NA", "ROW")"#,
    ),
    (51, r#"person.birthYear >= 2000"#),
    (
        52,
        r#"xEvent[(commerce.checkouts.value > 0.0 or commerce.purchases.value > 1.0 or commerce.order.priceTotal >= 10.0) and (timestamp occurs <= 7 days before now)].sum(commerce.order.priceTotal)"#,
    ),
    (
        53,
        r#"xEvent[(commerce.shipping.shipDate occurs <= 1 days before now) and (timestamp occurs <= 1 days before now)].min(commerce.shipping.shipDate)"#,
    ),
    (54, r#"xEvent.metrics.commerce.abandons.value > 0"#),
    (55, r#"workAddress.country = "US""#),
];

/// The expression numbered `n`.
pub fn doc(n: u32) -> &'static str {
    DOCUMENTED
        .iter()
        .find(|(i, _)| *i == n)
        .map(|(_, e)| *e)
        .unwrap_or_default()
}
