//! Primitive gadgets: groups whose boundary inputs feed a built-in function.
//!
//! ```
//! use bassline_core::{Primitive, Value};
//! assert_eq!(Primitive::Add.inputs(), &["a", "b"]);
//! let out = Primitive::Divide.compute(&[Value::from(1.0), Value::from(0.0)]);
//! assert!(out.is_err(), "division by zero is a contradiction");
//! ```

use serde::{Deserialize, Serialize};

use crate::Value;

/// The built-in gadgets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Primitive {
    Add,
    Subtract,
    Multiply,
    Divide,
    Min,
    Max,
    Equals,
    And,
    Or,
    Not,
    Concat,
    Length,
    /// Passes `value` to `out` while `condition` is true.
    Gate,
}

/// Name of every primitive's single output.
pub const OUTPUT: &str = "out";

/// What a gadget made of its inputs.
pub type Outcome = Result<Option<Value>, String>;

impl Primitive {
    /// Every primitive, for listings and tests.
    pub const ALL: [Primitive; 13] = [
        Primitive::Add,
        Primitive::Subtract,
        Primitive::Multiply,
        Primitive::Divide,
        Primitive::Min,
        Primitive::Max,
        Primitive::Equals,
        Primitive::And,
        Primitive::Or,
        Primitive::Not,
        Primitive::Concat,
        Primitive::Length,
        Primitive::Gate,
    ];

    /// Names of the input boundary contacts, in the order [`Primitive::compute`] takes them.
    pub fn inputs(self) -> &'static [&'static str] {
        match self {
            Primitive::Not | Primitive::Length => &["a"],
            Primitive::Gate => &["value", "condition"],
            _ => &["a", "b"],
        }
    }

    /// The gadget's kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            Primitive::Add => "add",
            Primitive::Subtract => "subtract",
            Primitive::Multiply => "multiply",
            Primitive::Divide => "divide",
            Primitive::Min => "min",
            Primitive::Max => "max",
            Primitive::Equals => "equals",
            Primitive::And => "and",
            Primitive::Or => "or",
            Primitive::Not => "not",
            Primitive::Concat => "concat",
            Primitive::Length => "length",
            Primitive::Gate => "gate",
        }
    }

    /// Runs the gadget on its inputs (in [`Primitive::inputs`] order).
    ///
    /// `Ok(None)` means the gadget is not active: an input is still null, or a gate's condition is
    /// false. `Err` is a contradiction to record on the output, such as a division by zero or an
    /// input of the wrong kind.
    pub fn compute(self, inputs: &[Value]) -> Outcome {
        if inputs.len() != self.inputs().len() || inputs.iter().any(Value::is_null) {
            return Ok(None);
        }
        let num = |i: usize| {
            inputs[i].as_number().ok_or_else(|| {
                format!(
                    "{} expects numbers, got {} {}",
                    self.name(),
                    inputs[i].kind(),
                    inputs[i]
                )
            })
        };
        let boolean = |i: usize| {
            inputs[i].as_bool().ok_or_else(|| {
                format!(
                    "{} expects booleans, got {} {}",
                    self.name(),
                    inputs[i].kind(),
                    inputs[i]
                )
            })
        };
        let out = match self {
            Primitive::Add => Value::Number(num(0)? + num(1)?),
            Primitive::Subtract => Value::Number(num(0)? - num(1)?),
            Primitive::Multiply => Value::Number(num(0)? * num(1)?),
            Primitive::Divide => {
                let d = num(1)?;
                if d == 0.0 {
                    return Err(format!("division by zero ({} / 0)", inputs[0]));
                }
                Value::Number(num(0)? / d)
            }
            Primitive::Min => Value::Number(num(0)?.min(num(1)?)),
            Primitive::Max => Value::Number(num(0)?.max(num(1)?)),
            Primitive::Equals => Value::Bool(inputs[0] == inputs[1]),
            Primitive::And => Value::Bool(boolean(0)? && boolean(1)?),
            Primitive::Or => Value::Bool(boolean(0)? || boolean(1)?),
            Primitive::Not => Value::Bool(!boolean(0)?),
            Primitive::Concat => match (&inputs[0], &inputs[1]) {
                (Value::String(a), Value::String(b)) => Value::String(format!("{a}{b}")),
                (Value::Array(a), Value::Array(b)) => {
                    Value::Array(a.iter().chain(b).cloned().collect())
                }
                (a, b) => {
                    return Err(format!(
                        "concat expects two strings or two arrays, got {} and {}",
                        a.kind(),
                        b.kind()
                    ));
                }
            },
            Primitive::Length => Value::Number(match &inputs[0] {
                Value::String(s) => s.chars().count() as f64,
                Value::Array(xs) | Value::GrowArray(xs) => xs.len() as f64,
                Value::GrowSet(xs) | Value::ShrinkSet(xs) => xs.len() as f64,
                Value::Map(m) | Value::GrowMap(m) | Value::ShrinkMap(m) => m.len() as f64,
                other => {
                    return Err(format!(
                        "length expects a string, array, set or map, got {}",
                        other.kind()
                    ));
                }
            }),
            Primitive::Gate => {
                if !boolean(1)? {
                    return Ok(None);
                }
                inputs[0].clone()
            }
        };
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(p: Primitive, inputs: &[Value]) -> Outcome {
        p.compute(inputs)
    }

    fn n(x: f64) -> Value {
        Value::Number(x)
    }

    #[test]
    fn arithmetic() {
        assert_eq!(run(Primitive::Add, &[n(2.0), n(3.0)]), Ok(Some(n(5.0))));
        assert_eq!(
            run(Primitive::Subtract, &[n(2.0), n(3.0)]),
            Ok(Some(n(-1.0)))
        );
        assert_eq!(
            run(Primitive::Multiply, &[n(2.0), n(3.0)]),
            Ok(Some(n(6.0)))
        );
        assert_eq!(run(Primitive::Divide, &[n(3.0), n(2.0)]), Ok(Some(n(1.5))));
        assert!(
            run(Primitive::Divide, &[n(3.0), n(0.0)])
                .unwrap_err()
                .contains("division by zero")
        );
        assert_eq!(run(Primitive::Min, &[n(2.0), n(3.0)]), Ok(Some(n(2.0))));
        assert_eq!(run(Primitive::Max, &[n(2.0), n(3.0)]), Ok(Some(n(3.0))));
        assert!(
            run(Primitive::Add, &[n(2.0), "x".into()])
                .unwrap_err()
                .contains("expects numbers")
        );
    }

    #[test]
    fn logic_and_comparison() {
        let t = Value::Bool(true);
        let f = Value::Bool(false);
        assert_eq!(
            run(Primitive::Equals, &[n(2.0), n(2.0)]),
            Ok(Some(t.clone()))
        );
        assert_eq!(
            run(Primitive::Equals, &[n(2.0), "2".into()]),
            Ok(Some(f.clone()))
        );
        assert_eq!(
            run(Primitive::And, &[t.clone(), f.clone()]),
            Ok(Some(f.clone()))
        );
        assert_eq!(
            run(Primitive::Or, &[t.clone(), f.clone()]),
            Ok(Some(t.clone()))
        );
        assert_eq!(run(Primitive::Not, &[f]), Ok(Some(t.clone())));
        assert!(run(Primitive::And, &[t, n(1.0)]).is_err());
    }

    #[test]
    fn strings_lengths_and_gate() {
        assert_eq!(
            run(Primitive::Concat, &["ab".into(), "c".into()]),
            Ok(Some("abc".into()))
        );
        assert_eq!(
            run(
                Primitive::Concat,
                &[Value::Array(vec![n(1.0)]), Value::Array(vec![n(2.0)])]
            ),
            Ok(Some(Value::Array(vec![n(1.0), n(2.0)])))
        );
        assert!(run(Primitive::Concat, &["a".into(), n(1.0)]).is_err());
        assert_eq!(run(Primitive::Length, &["héllo".into()]), Ok(Some(n(5.0))));
        assert_eq!(
            run(Primitive::Length, &[Value::grow_set([n(1.0)])]),
            Ok(Some(n(1.0)))
        );
        assert!(run(Primitive::Length, &[n(1.0)]).is_err());
        assert_eq!(
            run(Primitive::Gate, &[n(7.0), true.into()]),
            Ok(Some(n(7.0)))
        );
        assert_eq!(run(Primitive::Gate, &[n(7.0), false.into()]), Ok(None));
        assert!(run(Primitive::Gate, &[n(7.0), n(1.0)]).is_err());
    }

    #[test]
    fn inactive_until_every_input_is_present() {
        for p in Primitive::ALL {
            let mut inputs = vec![Value::Null; p.inputs().len()];
            assert_eq!(run(p, &inputs), Ok(None), "{p:?} with null inputs");
            inputs.truncate(0);
            assert_eq!(run(p, &inputs), Ok(None), "{p:?} with missing inputs");
        }
    }
}
