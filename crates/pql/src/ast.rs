//! The PQL abstract syntax tree, shared by the parser, the printer, the pql/json converter, the
//! checker, the compiler and the classifier.
//!
//! The tree is canonical, not a concrete syntax tree: parentheses, `!` versus `not`, `$1.x`
//! versus `x` and method versus free-function call style are not recorded, so that
//! text → AST → text → AST is the identity and pql/json round-trips exactly.
//!
//! Scoping: `Param { position: 1, up: 0 }` is the implicit input. At the top level it is the
//! profile; inside a filter `xs[...]`, an element argument (`.sum(e)`, `.groupBy(e)`, ...) or a
//! CHAIN step it is the current element, and `up: n` (written `^`×n) reaches the n-th enclosing
//! element, the outermost being the profile.

/// A PQL expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal value.
    Lit(Literal),
    /// `[a, b, ...]`.
    Array(Vec<Expr>),
    /// `{"k": v, ...}`, fields in source order.
    Object(Vec<(String, Expr)>),
    /// `$N`, the implicit root, or `^`…: see the module documentation.
    Param {
        /// 1-based input position.
        position: u32,
        /// How many element scopes to go up (`^` count).
        up: u32,
    },
    /// A variable bound by a lambda, `let`, a quantifier or `sum ... over`.
    Var(String),
    /// `object.name`.
    Field {
        /// The object looked into.
        object: Box<Expr>,
        /// The field name.
        name: String,
    },
    /// An operator or catalogue function; a method's receiver is `args[0]`.
    Call {
        /// Operator symbol (`=`, `and`, `notIn`, ...) or function name.
        func: String,
        /// Arguments, receiver first for methods.
        args: Vec<Expr>,
    },
    /// `array[cond]` (also written `array.filter(cond)`).
    Filter {
        /// The filtered array.
        array: Box<Expr>,
        /// The condition, evaluated with the element as implicit input.
        cond: Box<Expr>,
    },
    /// `(A, B) => body`.
    Lambda {
        /// Parameter names.
        params: Vec<String>,
        /// The body.
        body: Box<Expr>,
    },
    /// `let V = value in body`.
    Let {
        /// Bound name.
        var: String,
        /// Bound value.
        value: Box<Expr>,
        /// Body evaluated with the binding.
        body: Box<Expr>,
    },
    /// `exists`/`forall`/`select` with one or more bindings.
    Quant {
        /// Which quantifier.
        kind: Quantifier,
        /// `V from EXPR where COND`, comma-separated; later bindings may use earlier variables.
        bindings: Vec<Binding>,
    },
    /// `sum VALUE over V from SOURCE where COND`.
    SumOver {
        /// Summed value.
        value: Box<Expr>,
        /// Bound element name.
        var: String,
        /// Iterated array.
        source: Box<Expr>,
        /// Optional condition.
        cond: Option<Box<Expr>>,
    },
    /// `timestamp occurs ...`.
    Occurs {
        /// The tested timestamp.
        timestamp: Box<Expr>,
        /// The time constraint.
        spec: OccursSpec,
    },
    /// `CHAIN(events, timestampField, [L: WHAT(...) WHEN(...), ...])`.
    Chain(Chain),
}

/// Literal values.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A decimal number.
    Double(f64),
    /// A string.
    Str(String),
    /// `date(y, m, d)`: the UTC day.
    Date {
        /// Year.
        year: i32,
        /// Month 1..=12.
        month: u8,
        /// Day 1..=31.
        day: u8,
    },
}

/// Quantifier kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantifier {
    /// `exists`: some element satisfies the condition.
    Exists,
    /// `forall`: every element satisfies the condition.
    Forall,
    /// `select V from ... where ...`: same meaning as `exists` (documented synonym).
    Select,
}

impl Quantifier {
    /// The keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            Quantifier::Exists => "exists",
            Quantifier::Forall => "forall",
            Quantifier::Select => "select",
        }
    }
}

/// One `V from SOURCE where COND` binding.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// Variable name.
    pub var: String,
    /// The array ranged over.
    pub source: Expr,
    /// Optional condition (`where` or `:`).
    pub cond: Option<Expr>,
}

/// `occurs` comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    /// The operator symbol, also its pql/json function name.
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// Parses a symbol.
    pub fn from_symbol(s: &str) -> Option<Self> {
        Some(match s {
            "=" => CmpOp::Eq,
            "!=" => CmpOp::Ne,
            "<" => CmpOp::Lt,
            "<=" => CmpOp::Le,
            ">" => CmpOp::Gt,
            ">=" => CmpOp::Ge,
            _ => return None,
        })
    }
}

/// Time units of relative times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// milliseconds
    Millisecond,
    /// seconds
    Second,
    /// minutes
    Minute,
    /// hours
    Hour,
    /// days
    Day,
    /// weeks
    Week,
    /// months
    Month,
    /// years
    Year,
    /// decades
    Decade,
    /// centuries
    Century,
    /// millennia
    Millennium,
}

impl Unit {
    /// All units, smallest first.
    pub const ALL: [Unit; 11] = [
        Unit::Millisecond,
        Unit::Second,
        Unit::Minute,
        Unit::Hour,
        Unit::Day,
        Unit::Week,
        Unit::Month,
        Unit::Year,
        Unit::Decade,
        Unit::Century,
        Unit::Millennium,
    ];

    /// Singular spelling.
    pub fn singular(self) -> &'static str {
        match self {
            Unit::Millisecond => "millisecond",
            Unit::Second => "second",
            Unit::Minute => "minute",
            Unit::Hour => "hour",
            Unit::Day => "day",
            Unit::Week => "week",
            Unit::Month => "month",
            Unit::Year => "year",
            Unit::Decade => "decade",
            Unit::Century => "century",
            Unit::Millennium => "millennium",
        }
    }

    /// Plural spelling.
    pub fn plural(self) -> &'static str {
        match self {
            Unit::Millisecond => "milliseconds",
            Unit::Second => "seconds",
            Unit::Minute => "minutes",
            Unit::Hour => "hours",
            Unit::Day => "days",
            Unit::Week => "weeks",
            Unit::Month => "months",
            Unit::Year => "years",
            Unit::Decade => "decades",
            Unit::Century => "centuries",
            Unit::Millennium => "millennia",
        }
    }

    /// Reads a singular or plural spelling (case-insensitive).
    pub fn from_word(word: &str) -> Option<Self> {
        let lower = word.to_ascii_lowercase();
        Unit::ALL
            .into_iter()
            .find(|u| u.singular() == lower || u.plural() == lower)
    }
}

/// `before`, `after`, `from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Earlier than the reference time.
    Before,
    /// Later than the reference time.
    After,
    /// Later than the reference time (`3 days from now`).
    From,
}

impl Direction {
    /// The keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            Direction::Before => "before",
            Direction::After => "after",
            Direction::From => "from",
        }
    }

    /// Reads the keyword (case-insensitive).
    pub fn from_word(word: &str) -> Option<Self> {
        Some(match word.to_ascii_lowercase().as_str() {
            "before" => Direction::Before,
            "after" => Direction::After,
            "from" => Direction::From,
            _ => return None,
        })
    }
}

/// `this`, `last`, `next`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relative {
    /// The calendar period containing now.
    This,
    /// The one before.
    Last,
    /// The one after.
    Next,
}

impl Relative {
    /// The keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            Relative::This => "this",
            Relative::Last => "last",
            Relative::Next => "next",
        }
    }
}

/// `{TIME}` of an `occurs`: an instant or a calendar period.
#[derive(Debug, Clone, PartialEq)]
pub enum TimeRef {
    /// Evaluation instant.
    Now,
    /// The UTC day of `now`.
    Today,
    /// The UTC day before.
    Yesterday,
    /// The UTC day after.
    Tomorrow,
    /// `this|last|next UNIT`: a calendar period.
    Relative {
        /// Which period.
        rel: Relative,
        /// Its unit.
        unit: Unit,
    },
    /// `date(y,m,d)` (a day) or a timestamp-valued expression (an instant).
    Expr(Box<Expr>),
}

/// The four `occurs` forms.
#[derive(Debug, Clone, PartialEq)]
pub enum OccursSpec {
    /// `occurs CMP N UNIT DIRECTION TIME`.
    Compare {
        /// Comparison.
        op: CmpOp,
        /// Non-negative amount.
        amount: u64,
        /// Unit.
        unit: Unit,
        /// Direction.
        direction: Direction,
        /// Reference time.
        time: TimeRef,
    },
    /// `occurs DIRECTION TIME`.
    Direction {
        /// Direction.
        direction: Direction,
        /// Reference time.
        time: TimeRef,
    },
    /// `occurs [on] TIME`.
    On(TimeRef),
    /// `occurs between TIME and TIME`.
    Between(TimeRef, TimeRef),
}

/// `CHAIN(...)`: an ordered sequence of events.
#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    /// The events (normally `xEvent`).
    pub events: Box<Expr>,
    /// The timestamp field path inside an event (normally `timestamp`).
    pub timestamp: Vec<String>,
    /// The steps, matched in order by strictly increasing timestamps.
    pub steps: Vec<ChainStep>,
}

/// One `LABEL: WHAT(pred) WHEN(time)` step.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainStep {
    /// Label (`C0`, `A`, ...).
    pub label: String,
    /// Event predicate, the event being the implicit input.
    pub what: Expr,
    /// Optional time constraint on the event's timestamp.
    pub when: Option<OccursSpec>,
}

impl Expr {
    /// `name` looked up on the implicit input.
    pub fn field(name: &str) -> Expr {
        Expr::Field {
            object: Box::new(Expr::implicit()),
            name: name.to_owned(),
        }
    }

    /// The implicit input (`$1` at the current scope).
    pub fn implicit() -> Expr {
        Expr::Param { position: 1, up: 0 }
    }

    /// An operator or function application.
    pub fn call(func: &str, args: Vec<Expr>) -> Expr {
        Expr::Call {
            func: func.to_owned(),
            args,
        }
    }

    /// The direct sub-expressions (times of `occurs` and CHAIN `WHEN` included).
    pub fn children(&self) -> Vec<&Expr> {
        let mut out: Vec<&Expr> = Vec::new();
        match self {
            Expr::Lit(_) | Expr::Param { .. } | Expr::Var(_) => {}
            Expr::Array(items) => out.extend(items),
            Expr::Object(fields) => out.extend(fields.iter().map(|(_, v)| v)),
            Expr::Field { object, .. } => out.push(object),
            Expr::Call { args, .. } => out.extend(args),
            Expr::Filter { array, cond } => out.extend([&**array, &**cond]),
            Expr::Lambda { body, .. } => out.push(body),
            Expr::Let { value, body, .. } => out.extend([&**value, &**body]),
            Expr::Quant { bindings, .. } => {
                for b in bindings {
                    out.push(&b.source);
                    out.extend(&b.cond);
                }
            }
            Expr::SumOver {
                value,
                source,
                cond,
                ..
            } => {
                out.extend([&**value, &**source]);
                out.extend(cond.as_deref());
            }
            Expr::Occurs { timestamp, spec } => {
                out.push(timestamp);
                out.extend(spec.time_exprs());
            }
            Expr::Chain(chain) => {
                out.push(&chain.events);
                for step in &chain.steps {
                    out.push(&step.what);
                    if let Some(spec) = &step.when {
                        out.extend(spec.time_exprs());
                    }
                }
            }
        }
        out
    }

    /// The number of levels of the tree (1 for a leaf), computed without recursion so that it
    /// is safe on any tree.
    pub fn depth(&self) -> usize {
        let mut max = 0;
        let mut stack = vec![(self, 1usize)];
        while let Some((node, d)) = stack.pop() {
            max = max.max(d);
            stack.extend(node.children().into_iter().map(|c| (c, d + 1)));
        }
        max
    }

    /// The audience ids referenced by `inSegment("...")`, in order of appearance, without
    /// repeats: an audience's `dependencies` (segment of segments).
    pub fn segment_dependencies(&self) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        self.walk(&mut |e| {
            if let Expr::Call { func, args } = e {
                if let (true, Some(Expr::Lit(Literal::Str(id)))) =
                    (func == "inSegment", args.first())
                {
                    if !ids.contains(id) {
                        ids.push(id.clone());
                    }
                }
            }
        });
        ids
    }

    /// Whether the expression reads experience events (`xEvent` or a CHAIN), i.e. whether an
    /// evaluation needs the profile's events loaded.
    pub fn uses_events(&self) -> bool {
        let mut found = false;
        self.walk(&mut |e| {
            found |= matches!(e, Expr::Chain(_))
                || matches!(e, Expr::Field { name, .. } if name == "xEvent");
        });
        found
    }

    /// The field paths read from an input (`$1`, `^`, … at any scope) anywhere in the
    /// expression, each as long as written (`commerce.order.priceTotal`): whatever the
    /// expression reads of a document it is evaluated on lies at or under one of them.
    /// Paths of inner elements (`SKU` in `productListItems[SKU = "a"]`) come along too: more
    /// than read, never less. `None` when it may read more than it names: an input used whole
    /// (passed to a function, bound to a variable, compared), a CHAIN (its timestamp path is
    /// not an expression) or `xEvent` (a set of whole events).
    pub fn input_paths(&self) -> Option<Vec<Vec<String>>> {
        let mut paths = Vec::new();
        let mut stack = vec![self];
        while let Some(node) = stack.pop() {
            match node {
                Expr::Param { .. } | Expr::Chain(_) => return None,
                Expr::Field { .. } => {
                    let mut names = Vec::new();
                    let mut at = node;
                    while let Expr::Field { object, name } = at {
                        if name == "xEvent" {
                            return None;
                        }
                        names.push(name.clone());
                        at = object;
                    }
                    if matches!(at, Expr::Param { .. }) {
                        names.reverse();
                        paths.push(names);
                    } else {
                        stack.push(at);
                    }
                }
                _ => stack.extend(node.children()),
            }
        }
        Some(paths)
    }

    /// Visits this node and all its descendants, parents first.
    pub fn walk(&self, visit: &mut dyn FnMut(&Expr)) {
        visit(self);
        match self {
            Expr::Lit(_) | Expr::Param { .. } | Expr::Var(_) => {}
            Expr::Array(items) => items.iter().for_each(|e| e.walk(visit)),
            Expr::Object(fields) => fields.iter().for_each(|(_, e)| e.walk(visit)),
            Expr::Field { object, .. } => object.walk(visit),
            Expr::Call { args, .. } => args.iter().for_each(|e| e.walk(visit)),
            Expr::Filter { array, cond } => {
                array.walk(visit);
                cond.walk(visit);
            }
            Expr::Lambda { body, .. } => body.walk(visit),
            Expr::Let { value, body, .. } => {
                value.walk(visit);
                body.walk(visit);
            }
            Expr::Quant { bindings, .. } => {
                for b in bindings {
                    b.source.walk(visit);
                    if let Some(c) = &b.cond {
                        c.walk(visit);
                    }
                }
            }
            Expr::SumOver {
                value,
                source,
                cond,
                ..
            } => {
                value.walk(visit);
                source.walk(visit);
                if let Some(c) = cond {
                    c.walk(visit);
                }
            }
            Expr::Occurs { timestamp, spec } => {
                timestamp.walk(visit);
                spec.walk_times(visit);
            }
            Expr::Chain(chain) => {
                chain.events.walk(visit);
                for step in &chain.steps {
                    step.what.walk(visit);
                    if let Some(spec) = &step.when {
                        spec.walk_times(visit);
                    }
                }
            }
        }
    }
}

impl OccursSpec {
    /// The reference times of this spec.
    pub fn times(&self) -> Vec<&TimeRef> {
        match self {
            OccursSpec::Compare { time, .. } | OccursSpec::Direction { time, .. } => vec![time],
            OccursSpec::On(t) => vec![t],
            OccursSpec::Between(a, b) => vec![a, b],
        }
    }

    /// The expression-valued reference times.
    pub fn time_exprs(&self) -> Vec<&Expr> {
        self.times()
            .into_iter()
            .filter_map(|t| match t {
                TimeRef::Expr(e) => Some(&**e),
                _ => None,
            })
            .collect()
    }

    fn walk_times(&self, visit: &mut dyn FnMut(&Expr)) {
        for t in self.times() {
            if let TimeRef::Expr(e) = t {
                e.walk(visit);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(text: &str) -> Option<Vec<String>> {
        let mut found: Vec<String> = crate::parse(text)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .input_paths()?
            .iter()
            .map(|p| p.join("."))
            .collect();
        found.sort();
        Some(found)
    }

    fn list(names: &[&str]) -> Option<Vec<String>> {
        Some(names.iter().map(|n| (*n).to_owned()).collect())
    }

    #[test]
    fn input_paths_name_every_field_read() {
        assert_eq!(
            paths(r#"eventType = "commerce.purchases""#),
            list(&["eventType"])
        );
        assert_eq!(
            paths(r#"commerce.order.priceTotal >= 100 and web.webPageDetails.name = "x""#),
            list(&["commerce.order.priceTotal", "web.webPageDetails.name"])
        );
        assert_eq!(
            paths("timestamp occurs <= 7 days before now"),
            list(&["timestamp"])
        );
        // Names of inner elements come along: more than read, never less.
        assert_eq!(
            paths(r#"productListItems[SKU = "a"].count() > 0"#),
            list(&["SKU", "productListItems"])
        );
        assert_eq!(
            paths(r#"exists p from productListItems where p.SKU = "a""#),
            list(&["productListItems"])
        );
    }

    #[test]
    fn input_paths_give_up_when_more_may_be_read_than_named() {
        // An input compared whole.
        let whole = Expr::call("=", vec![Expr::implicit(), Expr::Lit(Literal::Int(1))]);
        assert_eq!(whole.input_paths(), None);
        // Whole events through `xEvent`, and CHAIN's timestamp path.
        assert_eq!(paths(r#"^.xEvent[eventType = "a"].count() > 0"#), None);
        assert_eq!(
            paths(r#"CHAIN(xEvent, timestamp, [C0: WHAT(eventType = "a")])"#),
            None
        );
    }
}
