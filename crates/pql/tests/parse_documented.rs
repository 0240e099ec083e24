//! Every documented expression parses, prints canonically, re-parses to the same tree, and
//! converts to pql/json and back exactly.

mod documented;

use documented::DOCUMENTED;
use tessera_pql::json::{from_json, to_json};
use tessera_pql::{parse, to_text};

#[test]
fn all_55_documented_expressions_parse_and_round_trip() -> Result<(), String> {
    assert_eq!(DOCUMENTED.len(), 55);
    for (n, src) in DOCUMENTED {
        let ast = parse(src).map_err(|e| format!("#{n} {src}\n{e}"))?;
        let text = to_text(&ast);
        let again = parse(&text).map_err(|e| format!("#{n} reprint {text}\n{e}"))?;
        assert_eq!(again, ast, "#{n}: text round trip via {text}");
        assert_eq!(to_text(&again), text, "#{n}: printing is stable");
        let json = to_json(&ast);
        let back = from_json(&json).map_err(|e| format!("#{n} json {e}"))?;
        assert_eq!(back, ast, "#{n}: json round trip");
        assert_eq!(to_json(&back), json, "#{n}: json is exact");
    }
    Ok(())
}

/// The canonical text of each documented group, pinned so that printer changes are visible.
#[test]
fn canonical_text_of_documented_expressions() -> Result<(), String> {
    let expected: &[(u32, &str)] = &[
        (2, "homeAddress.stateProvince = homeAddress.stateProvince"),
        (3, "(Profile) => Profile.homeAddress.stateProvince = Profile.workAddress.stateProvince"),
        (8, r#"not (homeAddress.countryISO = "CA")"#),
        (9, r#"if(homeAddress.countryISO = "CA", 1, 2)"#),
        (15, r#"emailAddress.regexGroup("@(\\w+)", 1)"#),
        (30, "product.saleDate occurs last week"),
        (31, "product.saleDate occurs between date(2015, 1, 8) and date(2017, 7, 1)"),
        (33, "person.birthday occurs = 3 days before today"),
        (35, r#"xEvent[productListItems[SKU = "PS" or ^^.person.gender = "female"]]"#),
        (36, r#"exists E from xEvent where E.commerce.item.price > 50, I from E.productListItems where I.SKU = "PS""#),
        (37, r#"let S = (sum X.commerce.order.priceTotal over X from xEvent where X.commerce.order.currencyCode = "USD") in S > 100 and S < 1000"#),
        (42, r#"inSegment("e3be6d7f-1727-401f-a41e-c296b45f607a") and CHAIN(xEvent, timestamp, [C0: WHAT(eventType.equals("commerce.checkouts", false)) WHEN(<= 24 hours before now)])"#),
        (44, r#"CHAIN(xEvent, timestamp, [A: WHAT(eventType = "transaction") WHEN(< 7 days before now)])"#),
        (47, r#"xEvent[timestamp occurs < 7 days before now and eventType = "download"].groupBy(product).map((K, G) => mapEntry(K, G.count()))"#),
        (53, "xEvent[commerce.shipping.shipDate occurs <= 1 day before now and timestamp occurs <= 1 day before now].min(commerce.shipping.shipDate)"),
    ];
    for (n, text) in expected {
        let ast = parse(documented::doc(*n)).map_err(|e| e.to_string())?;
        assert_eq!(to_text(&ast), *text, "#{n}");
    }
    Ok(())
}

#[test]
fn documented_pql_json_of_expression_55() -> Result<(), Box<dyn std::error::Error>> {
    let ast = parse(documented::doc(55))?;
    let json = tessera_pql::json::to_json_string(&ast);
    assert_eq!(
        json,
        r#"{"nodeType":"fnApply","fnName":"=","params":[{"nodeType":"fieldLookup","fieldName":"country","object":{"nodeType":"fieldLookup","fieldName":"workAddress","object":{"nodeType":"parameterReference","position":1}}},{"nodeType":"literal","literalType":"String","value":"US"}]}"#
    );
    Ok(())
}
