//! Small built-in catalogues: names, addresses, products, pages, campaigns. Everything the
//! generator draws from lives here, so output never depends on the network or on data files.
//! Lists are `&'static` and never empty (checked by a unit test), so picking from them is total.

/// A product of the web shop: SKU, display name, unit price in cents, category.
#[derive(Debug, Clone, Copy)]
pub struct Product {
    /// Stock keeping unit, unique in the catalogue.
    pub sku: &'static str,
    /// Display name.
    pub name: &'static str,
    /// Unit price in US cents.
    pub price_cents: u32,
    /// Category page the product is listed on.
    pub category: &'static str,
}

/// A city with its state and a postal-code prefix (three digits; two are appended).
#[derive(Debug, Clone, Copy)]
pub struct City {
    /// City name.
    pub name: &'static str,
    /// Two-letter state code.
    pub state: &'static str,
    /// First three digits of the ZIP code.
    pub zip_prefix: &'static str,
}

pub const FEMALE_FIRST_NAMES: &[&str] = &[
    "Mary",
    "Patricia",
    "Jennifer",
    "Linda",
    "Elizabeth",
    "Barbara",
    "Susan",
    "Jessica",
    "Sarah",
    "Karen",
    "Lisa",
    "Nancy",
    "Betty",
    "Sandra",
    "Margaret",
    "Ashley",
    "Kimberly",
    "Emily",
    "Donna",
    "Michelle",
    "Carol",
    "Amanda",
    "Melissa",
    "Deborah",
    "Stephanie",
    "Rebecca",
    "Laura",
    "Sharon",
    "Cynthia",
    "Kathleen",
    "Amy",
    "Angela",
    "Anna",
    "Brenda",
    "Emma",
    "Olivia",
    "Sofia",
    "Chloe",
    "Grace",
    "Zoe",
];

pub const MALE_FIRST_NAMES: &[&str] = &[
    "James",
    "Robert",
    "John",
    "Michael",
    "David",
    "William",
    "Richard",
    "Joseph",
    "Thomas",
    "Charles",
    "Christopher",
    "Daniel",
    "Matthew",
    "Anthony",
    "Mark",
    "Donald",
    "Steven",
    "Paul",
    "Andrew",
    "Joshua",
    "Kenneth",
    "Kevin",
    "Brian",
    "George",
    "Timothy",
    "Ronald",
    "Jason",
    "Edward",
    "Jeffrey",
    "Ryan",
    "Jacob",
    "Gary",
    "Nicholas",
    "Eric",
    "Jonathan",
    "Liam",
    "Noah",
    "Lucas",
    "Mateo",
    "Ethan",
];

pub const LAST_NAMES: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
];

pub const STREETS: &[&str] = &[
    "Main St",
    "Oak Ave",
    "Pine St",
    "Maple Ave",
    "Cedar Ln",
    "Elm St",
    "Washington Blvd",
    "Lake Dr",
    "Hill Rd",
    "Park Ave",
    "Sunset Blvd",
    "Church St",
    "River Rd",
    "Highland Ave",
    "Spring St",
    "Meadow Ln",
    "Forest Dr",
    "Broadway",
    "Market St",
    "Chestnut St",
];

pub const CITIES: &[City] = &[
    City {
        name: "New York",
        state: "NY",
        zip_prefix: "100",
    },
    City {
        name: "Los Angeles",
        state: "CA",
        zip_prefix: "900",
    },
    City {
        name: "Chicago",
        state: "IL",
        zip_prefix: "606",
    },
    City {
        name: "Houston",
        state: "TX",
        zip_prefix: "770",
    },
    City {
        name: "Phoenix",
        state: "AZ",
        zip_prefix: "850",
    },
    City {
        name: "Philadelphia",
        state: "PA",
        zip_prefix: "191",
    },
    City {
        name: "San Antonio",
        state: "TX",
        zip_prefix: "782",
    },
    City {
        name: "San Diego",
        state: "CA",
        zip_prefix: "921",
    },
    City {
        name: "Dallas",
        state: "TX",
        zip_prefix: "752",
    },
    City {
        name: "San Jose",
        state: "CA",
        zip_prefix: "951",
    },
    City {
        name: "Austin",
        state: "TX",
        zip_prefix: "787",
    },
    City {
        name: "Seattle",
        state: "WA",
        zip_prefix: "981",
    },
    City {
        name: "Denver",
        state: "CO",
        zip_prefix: "802",
    },
    City {
        name: "Boston",
        state: "MA",
        zip_prefix: "021",
    },
    City {
        name: "Portland",
        state: "OR",
        zip_prefix: "972",
    },
    City {
        name: "Atlanta",
        state: "GA",
        zip_prefix: "303",
    },
    City {
        name: "Miami",
        state: "FL",
        zip_prefix: "331",
    },
    City {
        name: "Minneapolis",
        state: "MN",
        zip_prefix: "554",
    },
    City {
        name: "Nashville",
        state: "TN",
        zip_prefix: "372",
    },
    City {
        name: "Salt Lake City",
        state: "UT",
        zip_prefix: "841",
    },
];

pub const EMAIL_DOMAINS: &[&str] = &[
    "gmail.example",
    "yahoo.example",
    "outlook.example",
    "icloud.example",
    "aol.example",
    "proton.example",
    "mail.example",
    "fastmail.example",
];

pub const PRODUCTS: &[Product] = &[
    Product {
        sku: "TSR-1001",
        name: "Trail Running Shoes",
        price_cents: 11_999,
        category: "shoes",
    },
    Product {
        sku: "TSR-1002",
        name: "Leather Boots",
        price_cents: 18_950,
        category: "shoes",
    },
    Product {
        sku: "TSR-1003",
        name: "Canvas Sneakers",
        price_cents: 5_499,
        category: "shoes",
    },
    Product {
        sku: "TSR-1004",
        name: "Wool Socks 3-Pack",
        price_cents: 1_999,
        category: "shoes",
    },
    Product {
        sku: "TSR-2001",
        name: "Rain Jacket",
        price_cents: 14_900,
        category: "outerwear",
    },
    Product {
        sku: "TSR-2002",
        name: "Down Parka",
        price_cents: 29_900,
        category: "outerwear",
    },
    Product {
        sku: "TSR-2003",
        name: "Fleece Pullover",
        price_cents: 6_950,
        category: "outerwear",
    },
    Product {
        sku: "TSR-2004",
        name: "Softshell Vest",
        price_cents: 8_900,
        category: "outerwear",
    },
    Product {
        sku: "TSR-3001",
        name: "Cotton T-Shirt",
        price_cents: 2_400,
        category: "tops",
    },
    Product {
        sku: "TSR-3002",
        name: "Linen Shirt",
        price_cents: 5_900,
        category: "tops",
    },
    Product {
        sku: "TSR-3003",
        name: "Merino Sweater",
        price_cents: 9_800,
        category: "tops",
    },
    Product {
        sku: "TSR-3004",
        name: "Hooded Sweatshirt",
        price_cents: 4_999,
        category: "tops",
    },
    Product {
        sku: "TSR-4001",
        name: "Slim Jeans",
        price_cents: 7_900,
        category: "bottoms",
    },
    Product {
        sku: "TSR-4002",
        name: "Hiking Pants",
        price_cents: 8_500,
        category: "bottoms",
    },
    Product {
        sku: "TSR-4003",
        name: "Running Shorts",
        price_cents: 3_500,
        category: "bottoms",
    },
    Product {
        sku: "TSR-5001",
        name: "Daypack 22L",
        price_cents: 9_900,
        category: "gear",
    },
    Product {
        sku: "TSR-5002",
        name: "Insulated Bottle",
        price_cents: 3_200,
        category: "gear",
    },
    Product {
        sku: "TSR-5003",
        name: "Headlamp",
        price_cents: 4_499,
        category: "gear",
    },
    Product {
        sku: "TSR-5004",
        name: "Two-Person Tent",
        price_cents: 34_900,
        category: "gear",
    },
    Product {
        sku: "TSR-5005",
        name: "Sleeping Bag",
        price_cents: 21_900,
        category: "gear",
    },
    Product {
        sku: "TSR-6001",
        name: "Sun Hat",
        price_cents: 2_900,
        category: "accessories",
    },
    Product {
        sku: "TSR-6002",
        name: "Polarized Sunglasses",
        price_cents: 12_900,
        category: "accessories",
    },
    Product {
        sku: "TSR-6003",
        name: "Leather Belt",
        price_cents: 3_900,
        category: "accessories",
    },
    Product {
        sku: "TSR-6004",
        name: "Knit Beanie",
        price_cents: 2_200,
        category: "accessories",
    },
    Product {
        sku: "TSR-6005",
        name: "Gift Card",
        price_cents: 5_000,
        category: "accessories",
    },
];

/// Content pages: (page name, URL path). Category pages are derived from product categories.
pub const PAGES: &[(&str, &str)] = &[
    ("home", "/"),
    ("new arrivals", "/new"),
    ("sale", "/sale"),
    ("store locator", "/stores"),
    ("help", "/help"),
    ("shipping and returns", "/help/shipping"),
    ("rewards", "/rewards"),
    ("blog", "/blog"),
    ("search results", "/search"),
    ("account", "/account"),
];

pub const CAMPAIGNS: &[&str] = &[
    "weekly-newsletter",
    "spring-sale",
    "new-arrivals",
    "abandoned-cart",
    "rewards-statement",
    "back-in-stock",
    "birthday-offer",
    "winback",
];

pub const CALL_REASONS: &[&str] = &[
    "order-status",
    "return",
    "billing",
    "product-question",
    "loyalty-points",
    "delivery-problem",
    "account-access",
    "complaint",
];

/// Picks an element from a built-in list. The lists are non-empty constants, so this never
/// falls back in practice; the fallback keeps the code total without `expect`.
pub fn pick<T: Copy>(list: &'static [T], index: usize, fallback: T) -> T {
    list.get(index % list.len().max(1))
        .copied()
        .unwrap_or(fallback)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn lists_are_non_empty_and_skus_unique() {
        assert!(!FEMALE_FIRST_NAMES.is_empty());
        assert!(!MALE_FIRST_NAMES.is_empty());
        assert!(!LAST_NAMES.is_empty());
        assert!(!STREETS.is_empty());
        assert!(!CITIES.is_empty());
        assert!(!EMAIL_DOMAINS.is_empty());
        assert!(!PAGES.is_empty());
        assert!(!CAMPAIGNS.is_empty());
        assert!(!CALL_REASONS.is_empty());
        let skus: BTreeSet<_> = PRODUCTS.iter().map(|p| p.sku).collect();
        assert_eq!(skus.len(), PRODUCTS.len());
        // names go into email local parts: no dots, spaces or non-ascii
        for n in FEMALE_FIRST_NAMES
            .iter()
            .chain(MALE_FIRST_NAMES)
            .chain(LAST_NAMES)
        {
            assert!(n.chars().all(|c| c.is_ascii_alphabetic()), "{n}");
        }
    }
}
