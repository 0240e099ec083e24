//! Evaluation: compile an [`Expr`] once into a [`Program`], then evaluate it on many profiles.
//!
//! Inputs are the merged profile (`serde_json::Value`), its experience events as an
//! [`EventSet`] (timestamps parsed and sorted once per profile, shared by every program
//! evaluated on it), and an [`EvalContext`] holding `now` (epoch milliseconds: the crate never
//! reads the clock) and the caller's segment memberships for `inSegment`.

mod compile;
mod run;
mod value;

use serde_json::Value;

pub use compile::like_regex;
use compile::{Compiler, Node};
pub use value::Val;

use crate::ast::Expr;
use crate::error::Result;

/// One experience event with its parsed `timestamp`.
#[derive(Debug, Clone)]
pub struct Event {
    /// `timestamp` as epoch milliseconds, if present and RFC 3339.
    pub timestamp: Option<i64>,
    /// The event document.
    pub doc: Value,
}

/// A profile's events, sorted by timestamp (events without one first, in input order).
#[derive(Debug, Clone, Default)]
pub struct EventSet {
    events: Vec<Event>,
}

impl EventSet {
    /// Parses each event's `timestamp` and sorts by it (stable).
    pub fn new(docs: Vec<Value>) -> Self {
        let mut events: Vec<Event> = docs
            .into_iter()
            .map(|doc| Event {
                timestamp: doc
                    .get("timestamp")
                    .and_then(Value::as_str)
                    .and_then(crate::time::parse_timestamp),
                doc,
            })
            .collect();
        events.sort_by_key(|e| e.timestamp.unwrap_or(i64::MIN));
        EventSet { events }
    }

    /// The events, sorted.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether there are no events.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

/// The caller's view of segment memberships, for `inSegment("id")`.
pub trait SegmentMembership {
    /// Whether the profile being evaluated is currently a member of `segment_id`.
    fn is_member(&self, segment_id: &str) -> bool;
}

impl<F: Fn(&str) -> bool> SegmentMembership for F {
    fn is_member(&self, segment_id: &str) -> bool {
        self(segment_id)
    }
}

/// No memberships at all.
pub struct NoSegments;

impl SegmentMembership for NoSegments {
    fn is_member(&self, _segment_id: &str) -> bool {
        false
    }
}

/// Everything an evaluation needs besides the profile.
pub struct EvalContext<'a> {
    /// The evaluation instant, epoch milliseconds UTC (`now`; `today` is its UTC day).
    pub now_ms: i64,
    /// Memberships for `inSegment`.
    pub segments: &'a dyn SegmentMembership,
}

impl EvalContext<'static> {
    /// A context at `now_ms` with no segment memberships.
    pub fn new(now_ms: i64) -> Self {
        EvalContext {
            now_ms,
            segments: &NoSegments,
        }
    }
}

/// A compiled expression, evaluated many times.
#[derive(Debug)]
pub struct Program {
    root: Node,
    slots: usize,
    /// Slot of the lambda parameter bound to the profile (`(Profile) => ...`).
    profile_slot: Option<usize>,
}

/// Compiles an expression for evaluation.
pub fn compile(expr: &Expr) -> Result<Program> {
    let mut c = Compiler::new();
    let (root, profile_slot) = match expr {
        Expr::Lambda { params, body } => {
            if params.len() != 1 {
                return Err(crate::Error::Compile {
                    reason: format!(
                        "a profile expression takes one input, this lambda takes {}",
                        params.len()
                    ),
                });
            }
            let slot = params.first().map(|p| c.bind(p));
            (c.compile(body)?, slot)
        }
        other => (c.compile(other)?, None),
    };
    Ok(Program {
        root,
        slots: c.slots,
        profile_slot,
    })
}

impl Program {
    fn run<T>(
        &self,
        profile: &Value,
        events: &EventSet,
        ctx: &EvalContext<'_>,
        finish: impl for<'v> FnOnce(Val<'v>) -> T,
    ) -> T {
        let mut env = run::Env {
            profile,
            events: &events.events,
            now: ctx.now_ms,
            segments: ctx.segments,
            scopes: vec![Val::Root],
            vars: vec![Val::Null; self.slots],
        };
        if let Some(slot) = self.profile_slot {
            if let Some(v) = env.vars.get_mut(slot) {
                *v = Val::Root;
            }
        }
        finish(env.eval(&self.root))
    }

    /// Evaluates and returns the result as JSON (times as RFC 3339 strings, maps as objects).
    pub fn evaluate(&self, profile: &Value, events: &EventSet, ctx: &EvalContext<'_>) -> Value {
        self.run(profile, events, ctx, |v| match v {
            // `$1` alone (or the lambda's parameter) is the profile document itself.
            Val::Root => profile.clone(),
            other => other.to_json(),
        })
    }

    /// Whether the profile qualifies: the result is `true` or a non-empty array (an event
    /// filter used as an audience); null (unknown) does not qualify.
    pub fn matches(&self, profile: &Value, events: &EventSet, ctx: &EvalContext<'_>) -> bool {
        self.run(profile, events, ctx, |v| run::condition(&v) == Some(true))
    }
}

#[cfg(test)]
mod tests {
    /// Compiled programs are shared by the segmentation workers.
    #[test]
    fn program_is_send_and_sync() {
        fn shared<T: Send + Sync>() {}
        shared::<super::Program>();
        shared::<super::EventSet>();
    }
}
