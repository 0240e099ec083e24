//! Recursive-descent parser: tokens to [`Expr`].
//!
//! Precedence, lowest first: lambda / `let` / quantifiers / `sum … over` (extend to the right),
//! `or`, `and`, `not`/`!`, comparisons with `in`, `notIn`, `like`, `occurs` (non-associative),
//! `+ -`, `* / %`, unary `-`, postfix `.field`, `.method(...)`, `[filter]`.
//! Unknown functions and wrong arity are syntax errors pointing at the function name.

use crate::ast::{
    Binding, Chain, ChainStep, CmpOp, Direction, Expr, Literal, OccursSpec, Quantifier, Relative,
    TimeRef, Unit,
};
use crate::error::ParseError;
use crate::functions::{self, Style};
use crate::lexer::{tokenize, Tok, Token};

/// Nesting deeper than this is rejected rather than risking the stack on hostile input.
const MAX_DEPTH: usize = 64;

/// Operators and postfix steps chained without nesting (`a or b or ...`, `a.b.c...`) each add
/// a level to the tree: one chain is capped while parsing, so a hostile input never builds a
/// huge tree, and the finished tree's depth is checked against [`MAX_TREE_DEPTH`].
const MAX_CHAINED: usize = 256;

/// Printing, checking, compiling, evaluating and converting recurse once per tree level:
/// deeper trees are rejected (sized for 2 MiB thread stacks in debug builds).
pub const MAX_TREE_DEPTH: usize = 256;

/// Words that cannot be bare field names because the grammar gives them a meaning.
pub(crate) const RESERVED: &[&str] = &[
    "and", "or", "not", "in", "notIn", "like", "occurs", "where", "from", "over", "let", "exists",
    "forall", "select", "sum", "true", "false",
];

/// Parses pql/text into an expression.
pub fn parse(src: &str) -> Result<Expr, ParseError> {
    let toks = tokenize(src)?;
    let mut p = Parser {
        src,
        toks,
        pos: 0,
        vars: Vec::new(),
        depth: 0,
    };
    let expr = p.parse_expr()?;
    if !matches!(p.peek(), Tok::Eof) {
        return Err(p.error("an operator or end of input"));
    }
    if expr.depth() > MAX_TREE_DEPTH {
        return Err(ParseError::with_found(
            src,
            0,
            "an expression at most 256 levels deep",
            format!("{} levels", expr.depth()),
        ));
    }
    Ok(expr)
}

struct Parser<'s> {
    src: &'s str,
    toks: Vec<Token>,
    pos: usize,
    /// Variables in scope, innermost last: a bound name is a variable, not a field.
    vars: Vec<String>,
    depth: usize,
}

impl Parser<'_> {
    fn token(&self, ahead: usize) -> Option<&Token> {
        self.toks.get(self.pos + ahead)
    }

    fn peek(&self) -> &Tok {
        self.peek_at(0)
    }

    fn peek_at(&self, ahead: usize) -> &Tok {
        self.token(ahead).map_or(&Tok::Eof, |t| &t.tok)
    }

    fn offset(&self) -> usize {
        self.token(0).map_or(self.src.len(), |t| t.start)
    }

    fn bump(&mut self) -> Tok {
        let tok = self.peek().clone();
        if self.pos < self.toks.len() {
            self.pos += 1;
        }
        tok
    }

    fn error(&self, expected: &str) -> ParseError {
        ParseError::with_found(self.src, self.offset(), expected, self.peek().describe())
    }

    fn error_at(&self, offset: usize, expected: &str, found: String) -> ParseError {
        ParseError::with_found(self.src, offset, expected, found)
    }

    fn expect(&mut self, tok: &Tok, expected: &str) -> Result<(), ParseError> {
        if self.peek() == tok {
            self.bump();
            Ok(())
        } else {
            Err(self.error(expected))
        }
    }

    fn is_word(&self, ahead: usize, word: &str) -> bool {
        matches!(self.peek_at(ahead), Tok::Ident(w) if w == word)
    }

    fn is_word_ci(&self, ahead: usize, word: &str) -> bool {
        matches!(self.peek_at(ahead), Tok::Ident(w) if w.eq_ignore_ascii_case(word))
    }

    fn expect_word(&mut self, word: &str) -> Result<(), ParseError> {
        if self.is_word(0, word) {
            self.bump();
            Ok(())
        } else {
            Err(self.error(&format!("`{word}`")))
        }
    }

    fn ident(&mut self, expected: &str) -> Result<String, ParseError> {
        match self.peek() {
            Tok::Ident(w) => {
                let w = w.clone();
                self.bump();
                Ok(w)
            }
            _ => Err(self.error(expected)),
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("a less deeply nested expression"));
        }
        Ok(())
    }

    /// Counts one more operator or postfix step in the current chain.
    fn chain(&self, count: &mut usize) -> Result<(), ParseError> {
        *count += 1;
        if *count > MAX_CHAINED {
            return Err(self.error("a shorter chain (at most 256 operators or steps in a row)"));
        }
        Ok(())
    }

    fn parse_expr(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        let result = self.parse_expr_inner();
        self.depth -= 1;
        result
    }

    fn parse_expr_inner(&mut self) -> Result<Expr, ParseError> {
        if let Some(params) = self.lambda_params() {
            // skip `( A , B ) =>`
            self.pos += params.len() * 2 + 2;
            let n = params.len();
            self.vars.extend(params.iter().cloned());
            let body = self.parse_expr();
            self.vars.truncate(self.vars.len() - n);
            return Ok(Expr::Lambda {
                params,
                body: Box::new(body?),
            });
        }
        let next_is_ident = matches!(self.peek_at(1), Tok::Ident(_));
        if self.is_word(0, "let") && next_is_ident && self.peek_at(2) == &Tok::Eq {
            return self.parse_let();
        }
        for (word, kind) in [
            ("exists", Quantifier::Exists),
            ("forall", Quantifier::Forall),
            ("select", Quantifier::Select),
        ] {
            // The words are reserved: a variable after one starts a quantifier, and a missing
            // `from` is reported there.
            if self.is_word(0, word) && next_is_ident {
                self.bump();
                return self.parse_quantifier(kind);
            }
        }
        if self.is_word(0, "sum") && !matches!(self.peek_at(1), Tok::LParen | Tok::Dot) {
            return self.parse_sum_over();
        }
        self.parse_or()
    }

    /// `( A, B ) =>` ahead: the parameter names.
    fn lambda_params(&self) -> Option<Vec<String>> {
        if self.peek() != &Tok::LParen {
            return None;
        }
        let mut names = Vec::new();
        let mut i = 1;
        loop {
            match self.peek_at(i) {
                Tok::Ident(name) => names.push(name.clone()),
                _ => return None,
            }
            match self.peek_at(i + 1) {
                Tok::Comma => i += 2,
                Tok::RParen if self.peek_at(i + 2) == &Tok::Arrow => return Some(names),
                _ => return None,
            }
        }
    }

    fn parse_let(&mut self) -> Result<Expr, ParseError> {
        self.bump();
        let var = self.ident("a variable name")?;
        self.expect(&Tok::Eq, "`=`")?;
        // The value stops before `in`, which is otherwise the membership operator.
        let value = self.parse_additive()?;
        self.expect_word("in")?;
        self.vars.push(var.clone());
        let body = self.parse_expr();
        self.vars.pop();
        Ok(Expr::Let {
            var,
            value: Box::new(value),
            body: Box::new(body?),
        })
    }

    fn parse_quantifier(&mut self, kind: Quantifier) -> Result<Expr, ParseError> {
        let mut bindings = Vec::new();
        let outer = self.vars.len();
        let result = (|| loop {
            let var = self.ident("a variable name")?;
            self.expect_word("from")?;
            let source = self.parse_additive()?;
            self.vars.push(var.clone());
            let cond = if self.is_word(0, "where") || self.peek() == &Tok::Colon {
                self.bump();
                Some(self.parse_or()?)
            } else {
                None
            };
            bindings.push(Binding { var, source, cond });
            let another = self.peek() == &Tok::Comma
                && matches!(self.peek_at(1), Tok::Ident(_))
                && self.is_word(2, "from");
            if !another {
                return Ok(());
            }
            self.bump();
        })();
        self.vars.truncate(outer);
        result?;
        Ok(Expr::Quant { kind, bindings })
    }

    fn parse_sum_over(&mut self) -> Result<Expr, ParseError> {
        let start = self.offset();
        self.bump();
        // The summed value names the variable before `over` binds it: find it first.
        let var = self.find_over_variable().ok_or_else(|| {
            self.error_at(start, "`sum VALUE over VAR from ARRAY`", "`sum`".to_owned())
        })?;
        self.vars.push(var.clone());
        let result = (|| {
            let value = self.parse_additive()?;
            self.expect_word("over")?;
            let at = self.offset();
            let bound = self.ident("a variable name")?;
            // The variable was found by looking ahead; a value that itself contains `over`
            // can make the parse end elsewhere. That is malformed input, not a broken
            // invariant.
            if bound != var {
                return Err(self.error_at(
                    at,
                    &format!("the variable `{var}` after `over`"),
                    format!("`{bound}`"),
                ));
            }
            self.expect_word("from")?;
            let source = self.parse_additive()?;
            let cond = if self.is_word(0, "where") || self.peek() == &Tok::Colon {
                self.bump();
                Some(Box::new(self.parse_or()?))
            } else {
                None
            };
            Ok(Expr::SumOver {
                value: Box::new(value),
                var: var.clone(),
                source: Box::new(source),
                cond,
            })
        })();
        self.vars.pop();
        result
    }

    fn find_over_variable(&self) -> Option<String> {
        let mut depth = 0i32;
        let mut i = 0;
        loop {
            match self.peek_at(i) {
                Tok::Eof => return None,
                Tok::LParen | Tok::LBracket | Tok::LBrace => depth += 1,
                Tok::RParen | Tok::RBracket | Tok::RBrace => {
                    depth -= 1;
                    if depth < 0 {
                        return None;
                    }
                }
                // `$1.over` is a field named over, not the keyword
                Tok::Ident(w)
                    if w == "over"
                        && depth == 0
                        && (i == 0 || self.peek_at(i - 1) != &Tok::Dot) =>
                {
                    return match self.peek_at(i + 1) {
                        Tok::Ident(v) => Some(v.clone()),
                        _ => None,
                    };
                }
                _ => {}
            }
            i += 1;
        }
    }

    fn parse_or(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.parse_and()?;
        let mut chained = 0;
        while self.is_word(0, "or") {
            self.chain(&mut chained)?;
            self.bump();
            let right = self.parse_and()?;
            left = Expr::call("or", vec![left, right]);
        }
        Ok(left)
    }

    fn parse_and(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.parse_not()?;
        let mut chained = 0;
        while self.is_word(0, "and") {
            self.chain(&mut chained)?;
            self.bump();
            let right = self.parse_not()?;
            left = Expr::call("and", vec![left, right]);
        }
        Ok(left)
    }

    fn parse_not(&mut self) -> Result<Expr, ParseError> {
        if self.is_word(0, "not") || self.peek() == &Tok::Bang {
            self.bump();
            self.enter()?;
            let operand = self.parse_not();
            self.depth -= 1;
            return Ok(Expr::call("not", vec![operand?]));
        }
        self.parse_comparison()
    }

    fn parse_comparison(&mut self) -> Result<Expr, ParseError> {
        let left = self.parse_additive()?;
        let op = match self.peek() {
            Tok::Eq => "=",
            Tok::Ne => "!=",
            Tok::Lt => "<",
            Tok::Le => "<=",
            Tok::Gt => ">",
            Tok::Ge => ">=",
            Tok::Ident(w) if w == "in" || w == "notIn" || w == "like" => {
                if w == "in" {
                    "in"
                } else if w == "notIn" {
                    "notIn"
                } else {
                    "like"
                }
            }
            Tok::Ident(w) if w == "occurs" => {
                self.bump();
                let spec = self.parse_occurs_spec()?;
                return Ok(Expr::Occurs {
                    timestamp: Box::new(left),
                    spec,
                });
            }
            _ => return Ok(left),
        };
        self.bump();
        let right = self.parse_additive()?;
        Ok(Expr::call(op, vec![left, right]))
    }

    fn parse_additive(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.parse_multiplicative()?;
        let mut chained = 0;
        loop {
            let op = match self.peek() {
                Tok::Plus => "+",
                Tok::Minus => "-",
                _ => return Ok(left),
            };
            self.chain(&mut chained)?;
            self.bump();
            let right = self.parse_multiplicative()?;
            left = Expr::call(op, vec![left, right]);
        }
    }

    fn parse_multiplicative(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.parse_unary()?;
        let mut chained = 0;
        loop {
            let op = match self.peek() {
                Tok::Star => "*",
                Tok::Slash => "/",
                Tok::Percent => "%",
                _ => return Ok(left),
            };
            self.chain(&mut chained)?;
            self.bump();
            let right = self.parse_unary()?;
            left = Expr::call(op, vec![left, right]);
        }
    }

    fn parse_unary(&mut self) -> Result<Expr, ParseError> {
        if self.peek() != &Tok::Minus {
            return self.parse_postfix();
        }
        self.bump();
        // `-201` is a literal (the docs list negative integers as literals), `-(x)` an operator.
        let literal = match self.peek() {
            Tok::Int(i) => Some(Literal::Int(-i)),
            Tok::Float(f) => Some(Literal::Double(-f)),
            _ => None,
        };
        if let Some(lit) = literal {
            self.bump();
            return self.parse_postfix_ops(Expr::Lit(lit));
        }
        self.enter()?;
        let operand = self.parse_unary();
        self.depth -= 1;
        Ok(Expr::call("-", vec![operand?]))
    }

    fn parse_postfix(&mut self) -> Result<Expr, ParseError> {
        let primary = self.parse_primary()?;
        self.parse_postfix_ops(primary)
    }

    fn parse_postfix_ops(&mut self, mut expr: Expr) -> Result<Expr, ParseError> {
        let mut chained = 0;
        loop {
            if matches!(self.peek(), Tok::Dot | Tok::LBracket) {
                self.chain(&mut chained)?;
            }
            match self.peek() {
                Tok::Dot => {
                    self.bump();
                    let name_at = self.offset();
                    let name = self.ident("a field or function name after `.`")?;
                    if self.peek() != &Tok::LParen {
                        expr = Expr::Field {
                            object: Box::new(expr),
                            name,
                        };
                        continue;
                    }
                    let mut args = vec![expr];
                    args.extend(self.parse_args()?);
                    expr = self.apply(&name, name_at, args, true)?;
                }
                Tok::LBracket => {
                    self.bump();
                    let cond = self.parse_expr()?;
                    self.expect(&Tok::RBracket, "`]` closing the filter")?;
                    expr = Expr::Filter {
                        array: Box::new(expr),
                        cond: Box::new(cond),
                    };
                }
                _ => return Ok(expr),
            }
        }
    }

    /// `( a, b, ... )`
    fn parse_args(&mut self) -> Result<Vec<Expr>, ParseError> {
        self.expect(&Tok::LParen, "`(`")?;
        let mut args = Vec::new();
        if self.peek() == &Tok::RParen {
            self.bump();
            return Ok(args);
        }
        loop {
            args.push(self.parse_expr()?);
            match self.peek() {
                Tok::Comma => {
                    self.bump();
                }
                Tok::RParen => {
                    self.bump();
                    return Ok(args);
                }
                _ => return Err(self.error("`,` or `)` in the argument list")),
            }
        }
    }

    /// Resolves a call against the catalogue: unknown names and wrong arity are errors.
    fn apply(
        &self,
        name: &str,
        name_at: usize,
        args: Vec<Expr>,
        as_method: bool,
    ) -> Result<Expr, ParseError> {
        if name == "filter" && as_method {
            if args.len() != 2 {
                return Err(self.error_at(
                    name_at,
                    "exactly 1 argument for `filter`",
                    format!("{} argument(s)", args.len().saturating_sub(1)),
                ));
            }
            let mut it = args.into_iter();
            let (Some(array), Some(cond)) = (it.next(), it.next()) else {
                return Err(self.error_at(name_at, "a filter condition", "nothing".to_owned()));
            };
            return Ok(Expr::Filter {
                array: Box::new(array),
                cond: Box::new(cond),
            });
        }
        let Some(spec) = functions::lookup(name) else {
            return Err(self.error_at(
                name_at,
                "a known function",
                format!("unknown function `{name}`"),
            ));
        };
        if as_method && spec.style == Style::Free {
            return Err(self.error_at(
                name_at,
                &format!("`{name}(...)` called as a function, not a method"),
                format!("`.{name}`"),
            ));
        }
        let shown = |n: usize| {
            if spec.style == Style::Method {
                n.saturating_sub(1)
            } else {
                n
            }
        };
        if args.len() < spec.min || args.len() > spec.max {
            let expected = if spec.min == spec.max {
                format!("{} argument(s) for `{name}`", shown(spec.min))
            } else {
                format!(
                    "{} to {} arguments for `{name}`",
                    shown(spec.min),
                    shown(spec.max)
                )
            };
            return Err(self.error_at(
                name_at,
                &expected,
                format!("{} argument(s)", shown(args.len())),
            ));
        }
        Ok(Expr::Call {
            func: name.to_owned(),
            args,
        })
    }

    fn parse_primary(&mut self) -> Result<Expr, ParseError> {
        let at = self.offset();
        match self.peek().clone() {
            Tok::Int(i) => {
                self.bump();
                Ok(Expr::Lit(Literal::Int(i)))
            }
            Tok::Float(f) => {
                self.bump();
                Ok(Expr::Lit(Literal::Double(f)))
            }
            Tok::Str(s) => {
                self.bump();
                Ok(Expr::Lit(Literal::Str(s)))
            }
            Tok::Param(n) => {
                self.bump();
                Ok(Expr::Param { position: n, up: 0 })
            }
            Tok::Caret => {
                let mut up = 0;
                while self.peek() == &Tok::Caret {
                    self.bump();
                    up += 1;
                }
                Ok(Expr::Param { position: 1, up })
            }
            Tok::LParen => {
                self.bump();
                let inner = self.parse_expr()?;
                self.expect(&Tok::RParen, "`)`")?;
                Ok(inner)
            }
            Tok::LBracket => {
                self.bump();
                let mut items = Vec::new();
                if self.peek() == &Tok::RBracket {
                    self.bump();
                    return Ok(Expr::Array(items));
                }
                loop {
                    items.push(self.parse_expr()?);
                    match self.bump() {
                        Tok::Comma => {}
                        Tok::RBracket => return Ok(Expr::Array(items)),
                        _ => {
                            self.pos -= 1;
                            return Err(self.error("`,` or `]` in the array"));
                        }
                    }
                }
            }
            Tok::LBrace => self.parse_object(),
            Tok::Ident(word) => self.parse_word(word, at),
            _ => Err(self.error("an expression")),
        }
    }

    fn parse_object(&mut self) -> Result<Expr, ParseError> {
        self.bump();
        let mut fields = Vec::new();
        if self.peek() == &Tok::RBrace {
            self.bump();
            return Ok(Expr::Object(fields));
        }
        loop {
            let key = match self.bump() {
                Tok::Str(s) | Tok::Ident(s) => s,
                _ => {
                    self.pos -= 1;
                    return Err(self.error("an object key"));
                }
            };
            self.expect(&Tok::Colon, "`:` after the object key")?;
            fields.push((key, self.parse_expr()?));
            match self.bump() {
                Tok::Comma => {}
                Tok::RBrace => return Ok(Expr::Object(fields)),
                _ => {
                    self.pos -= 1;
                    return Err(self.error("`,` or `}` in the object"));
                }
            }
        }
    }

    fn parse_word(&mut self, word: String, at: usize) -> Result<Expr, ParseError> {
        let call_follows = self.peek_at(1) == &Tok::LParen;
        if word == "true" || word == "false" {
            self.bump();
            return Ok(Expr::Lit(Literal::Bool(word == "true")));
        }
        if word == "date" && call_follows {
            return self.parse_date();
        }
        if word.eq_ignore_ascii_case("chain") && call_follows {
            return self.parse_chain();
        }
        if self.vars.contains(&word) {
            self.bump();
            return Ok(Expr::Var(word));
        }
        if call_follows {
            self.bump();
            let args = self.parse_args()?;
            return self.apply(&word, at, args, false);
        }
        if RESERVED.contains(&word.as_str()) {
            return Err(self.error("an expression"));
        }
        self.bump();
        Ok(Expr::field(&word))
    }

    fn parse_date(&mut self) -> Result<Expr, ParseError> {
        self.bump();
        self.expect(&Tok::LParen, "`(`")?;
        let mut parts = [0i64; 3];
        for (i, part) in parts.iter_mut().enumerate() {
            if i > 0 {
                self.expect(
                    &Tok::Comma,
                    "`,` between the parts of `date(year, month, day)`",
                )?;
            }
            match self.peek() {
                Tok::Int(v) => {
                    *part = *v;
                    self.bump();
                }
                _ => return Err(self.error("an integer in `date(year, month, day)`")),
            }
        }
        let at = self.offset();
        self.expect(&Tok::RParen, "`)` closing `date(year, month, day)`")?;
        let [year, month, day] = parts;
        let valid_date = i32::try_from(year).ok().and_then(|y| {
            let m = u8::try_from(month).ok().filter(|m| (1..=12).contains(m))?;
            let d = u8::try_from(day)
                .ok()
                .filter(|d| *d >= 1 && *d <= crate::time::days_in_month(i64::from(y), m))?;
            Some((y, m, d))
        });
        let Some((year, month, day)) = valid_date else {
            return Err(self.error_at(
                at,
                "a valid calendar date",
                format!("date({year}, {month}, {day})"),
            ));
        };
        Ok(Expr::Lit(Literal::Date { year, month, day }))
    }

    fn parse_chain(&mut self) -> Result<Expr, ParseError> {
        self.bump();
        self.expect(&Tok::LParen, "`(`")?;
        let events = self.parse_expr()?;
        self.expect(&Tok::Comma, "`,` after the CHAIN events")?;
        let mut timestamp = vec![self.ident("the timestamp field name")?];
        while self.peek() == &Tok::Dot {
            self.bump();
            timestamp.push(self.ident("a field name")?);
        }
        self.expect(&Tok::Comma, "`,` after the CHAIN timestamp field")?;
        self.expect(&Tok::LBracket, "`[` opening the CHAIN steps")?;
        let mut steps = Vec::new();
        loop {
            let label = self.ident("a step label such as `C0`")?;
            self.expect(&Tok::Colon, "`:` after the step label")?;
            if !self.is_word_ci(0, "what") {
                return Err(self.error("`WHAT(...)`"));
            }
            self.bump();
            self.expect(&Tok::LParen, "`(`")?;
            let what = self.parse_expr()?;
            self.expect(&Tok::RParen, "`)` closing WHAT")?;
            let when = if self.is_word_ci(0, "when") {
                self.bump();
                self.expect(&Tok::LParen, "`(`")?;
                let spec = self.parse_occurs_spec()?;
                self.expect(&Tok::RParen, "`)` closing WHEN")?;
                Some(spec)
            } else {
                None
            };
            steps.push(ChainStep { label, what, when });
            match self.peek() {
                Tok::Comma => {
                    self.bump();
                }
                Tok::RBracket => {
                    self.bump();
                    break;
                }
                _ => return Err(self.error("`,` or `]` after a CHAIN step")),
            }
        }
        self.expect(&Tok::RParen, "`)` closing CHAIN")?;
        Ok(Expr::Chain(Chain {
            events: Box::new(events),
            timestamp,
            steps,
        }))
    }

    fn parse_occurs_spec(&mut self) -> Result<OccursSpec, ParseError> {
        let op = match self.peek() {
            Tok::Eq => Some(CmpOp::Eq),
            Tok::Ne => Some(CmpOp::Ne),
            Tok::Lt => Some(CmpOp::Lt),
            Tok::Le => Some(CmpOp::Le),
            Tok::Gt => Some(CmpOp::Gt),
            Tok::Ge => Some(CmpOp::Ge),
            _ => None,
        };
        if let Some(op) = op {
            self.bump();
            let amount = match self.peek() {
                Tok::Int(n) => {
                    u64::try_from(*n).map_err(|_| self.error("a non-negative integer"))?
                }
                _ => return Err(self.error("a non-negative integer")),
            };
            self.bump();
            let unit = self.parse_unit()?;
            let direction = match self.peek() {
                Tok::Ident(w) => Direction::from_word(w),
                _ => None,
            }
            .ok_or_else(|| self.error("`before`, `after` or `from`"))?;
            self.bump();
            let time = self.parse_time()?;
            return Ok(OccursSpec::Compare {
                op,
                amount,
                unit,
                direction,
                time,
            });
        }
        if self.is_word_ci(0, "between") {
            self.bump();
            let from = self.parse_time()?;
            self.expect_word("and")?;
            let to = self.parse_time()?;
            return Ok(OccursSpec::Between(from, to));
        }
        if let Tok::Ident(w) = self.peek() {
            if let Some(direction) = Direction::from_word(w) {
                self.bump();
                let time = self.parse_time()?;
                return Ok(OccursSpec::Direction { direction, time });
            }
        }
        if self.is_word_ci(0, "on") {
            self.bump();
        }
        Ok(OccursSpec::On(self.parse_time()?))
    }

    fn parse_unit(&mut self) -> Result<Unit, ParseError> {
        let unit = match self.peek() {
            Tok::Ident(w) => Unit::from_word(w),
            _ => None,
        }
        .ok_or_else(|| self.error("a time unit (`days`, `hours`, `week`, ...)"))?;
        self.bump();
        Ok(unit)
    }

    fn parse_time(&mut self) -> Result<TimeRef, ParseError> {
        if let Tok::Ident(w) = self.peek() {
            let word = w.to_ascii_lowercase();
            let simple = match word.as_str() {
                "now" => Some(TimeRef::Now),
                "today" => Some(TimeRef::Today),
                "yesterday" => Some(TimeRef::Yesterday),
                "tomorrow" => Some(TimeRef::Tomorrow),
                _ => None,
            };
            if let Some(t) = simple {
                self.bump();
                return Ok(t);
            }
            let rel = match word.as_str() {
                "this" => Some(Relative::This),
                "last" => Some(Relative::Last),
                "next" => Some(Relative::Next),
                _ => None,
            };
            if let Some(rel) = rel {
                if let Tok::Ident(u) = self.peek_at(1) {
                    if let Some(unit) = Unit::from_word(u) {
                        self.bump();
                        self.bump();
                        return Ok(TimeRef::Relative { rel, unit });
                    }
                }
            }
        }
        if matches!(self.peek(), Tok::Eof | Tok::RParen) {
            return Err(self.error(
                "a time: `now`, `today`, `yesterday`, `tomorrow`, `this|last|next UNIT`, \
                 `date(y, m, d)` or a timestamp field",
            ));
        }
        Ok(TimeRef::Expr(Box::new(self.parse_unary()?)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn precedence_of_and_over_or() {
        let e = parse("a = 1 or b = 2 and c = 3").unwrap();
        let Expr::Call { func, args } = e else {
            panic!("not a call")
        };
        assert_eq!(func, "or");
        assert!(matches!(&args[1], Expr::Call { func, .. } if func == "and"));
    }

    #[test]
    fn arithmetic_precedence() {
        let e = parse("a + b * c").unwrap();
        assert_eq!(
            e,
            Expr::call(
                "+",
                vec![
                    Expr::field("a"),
                    Expr::call("*", vec![Expr::field("b"), Expr::field("c")])
                ]
            )
        );
    }

    #[test]
    fn negative_literal_and_negation() {
        assert_eq!(parse("-201").unwrap(), Expr::Lit(Literal::Int(-201)));
        assert_eq!(
            parse("-(a)").unwrap(),
            Expr::call("-", vec![Expr::field("a")])
        );
    }

    #[test]
    fn unknown_function_is_an_error_at_its_name() {
        let err = parse("person.name.startWith(\"Joe\")").unwrap_err();
        assert_eq!((err.line, err.column), (1, 13));
        assert_eq!(err.found, "unknown function `startWith`");
    }

    #[test]
    fn wrong_arity_is_an_error() {
        let err = parse("xs.count(1)").unwrap_err();
        assert_eq!(err.column, 4);
        assert_eq!(err.expected, "0 argument(s) for `count`");
        assert_eq!(err.found, "1 argument(s)");
    }

    #[test]
    fn deep_nesting_is_rejected_not_overflowed() {
        let src = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
        assert!(parse(&src).is_err());
        let src = "not ".repeat(5000) + "a";
        assert!(parse(&src).is_err());
    }

    #[test]
    fn long_chains_are_capped_not_overflowed() {
        let fields = format!("a{}", ".b".repeat(100_000));
        let err = parse(&fields).unwrap_err();
        assert_eq!(
            err.expected,
            "a shorter chain (at most 256 operators or steps in a row)"
        );
        let ors = "x = 1 or ".repeat(100_000) + "x = 1";
        assert!(parse(&ors).is_err());
        // chains nested in parentheses: each is allowed, the tree is too deep
        let nested = "(".repeat(60) + "a" + &").b.b.b.b.b.b.b.b.b.b".repeat(60);
        let err = parse(&nested).unwrap_err();
        assert_eq!(err.expected, "an expression at most 256 levels deep");
        // many conditions side by side are fine: depth, not size, is limited
        let wide = vec!["person.address.country = \"US\""; 2000].join(" or ");
        assert!(parse(&wide).is_err(), "2000 in one `or` chain exceed 256");
        let wide = vec![format!("({})", vec!["a.b.c = 1"; 200].join(" or ")); 10].join(" and ");
        assert!(parse(&wide).is_ok());
    }
}
