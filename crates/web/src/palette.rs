//! The palette: every primitive gadget, by category, showing its inputs and output.
//!
//! ```
//! use bassline_web::palette::{CATEGORIES, signature};
//! let all: usize = CATEGORIES.iter().map(|(_, ps)| ps.len()).sum();
//! assert_eq!(all, bassline_core::Primitive::ALL.len());
//! assert_eq!(signature(bassline_core::Primitive::Add), "a, b → out");
//! ```

use bassline_core::{OUTPUT, Primitive};

/// Categories in the order the palette shows them.
pub const CATEGORIES: &[(&str, &[Primitive])] = &[
    (
        "math",
        &[
            Primitive::Add,
            Primitive::Subtract,
            Primitive::Multiply,
            Primitive::Divide,
            Primitive::Min,
            Primitive::Max,
        ],
    ),
    (
        "logic",
        &[
            Primitive::Equals,
            Primitive::And,
            Primitive::Or,
            Primitive::Not,
        ],
    ),
    ("string", &[Primitive::Concat, Primitive::Length]),
    ("control", &[Primitive::Gate]),
];

/// "a, b → out".
pub fn signature(p: Primitive) -> String {
    format!("{} → {OUTPUT}", p.inputs().join(", "))
}

/// What the gadget does, in a few words, for the palette's tooltip.
pub fn describe(p: Primitive) -> &'static str {
    match p {
        Primitive::Add => "sum of two numbers",
        Primitive::Subtract => "a minus b",
        Primitive::Multiply => "product of two numbers",
        Primitive::Divide => "a divided by b (dividing by zero is a contradiction)",
        Primitive::Min => "the smaller number",
        Primitive::Max => "the larger number",
        Primitive::Equals => "true when a equals b",
        Primitive::And => "true when both are true",
        Primitive::Or => "true when either is true",
        Primitive::Not => "the opposite of a",
        Primitive::Concat => "b appended to a (strings or arrays)",
        Primitive::Length => "length of a string or array",
        Primitive::Gate => "passes value while condition is true",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_primitive_appears_exactly_once() {
        for p in Primitive::ALL {
            let n = CATEGORIES.iter().filter(|(_, ps)| ps.contains(&p)).count();
            assert_eq!(n, 1, "{p:?}");
        }
    }
}
