//! Values held by contacts: JSON-like data plus the mergeable lattices.
//!
//! ```
//! use bassline_core::Value;
//! let a = Value::grow_set([Value::from(1.0), Value::from(2.0)]);
//! let b = Value::grow_set([Value::from(2.0), Value::from(3.0)]);
//! assert_eq!(a.merge(&b).unwrap(), Value::grow_set([1.0.into(), 2.0.into(), 3.0.into()]));
//! ```

use std::{
    cmp::Ordering,
    collections::{BTreeMap, BTreeSet},
    fmt,
};

use serde::{
    Deserialize, Deserializer, Serialize, Serializer,
    de::{self, MapAccess, SeqAccess, Visitor},
    ser::{SerializeMap, SerializeSeq},
};

/// Deepest nesting a decoded value may have; deeper input is rejected instead of overflowing the
/// stack.
pub const MAX_DEPTH: usize = 64;

/// A contact's value.
///
/// Scalars, arrays and maps behave like JSON. The lattice kinds only ever move one way when
/// merged: a grow-set gains elements, a shrink-set loses them, a grow-map gains keys, a
/// shrink-map loses keys, and a grow-array merges element by element and only grows.
#[derive(Clone, Debug, Default)]
pub enum Value {
    /// Nothing yet. Merging with `Null` leaves the other value as it is.
    #[default]
    Null,
    Bool(bool),
    /// Numbers are 64-bit floats, as in JSON and JavaScript. Merged, the larger one wins.
    Number(f64),
    String(String),
    Array(Vec<Value>),
    Map(BTreeMap<String, Value>),
    /// Merge is union.
    GrowSet(BTreeSet<Value>),
    /// Merge is intersection.
    ShrinkSet(BTreeSet<Value>),
    /// Merge is key union; values under the same key merge.
    GrowMap(BTreeMap<String, Value>),
    /// Merge is key intersection; values under the same key merge.
    ShrinkMap(BTreeMap<String, Value>),
    /// Merge is element-wise; the longer array's tail is kept.
    GrowArray(Vec<Value>),
}

/// Two values that cannot be merged, such as two different strings or a set and a number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergeConflict {
    /// Says which values clashed, for the contradiction shown to the user.
    pub reason: String,
}

impl Value {
    /// A grow-set of the given elements.
    pub fn grow_set(items: impl IntoIterator<Item = Value>) -> Value {
        Value::GrowSet(items.into_iter().collect())
    }

    /// A shrink-set of the given elements.
    pub fn shrink_set(items: impl IntoIterator<Item = Value>) -> Value {
        Value::ShrinkSet(items.into_iter().collect())
    }

    /// The name of this value's kind, as used in messages and in the tagged JSON form.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Map(_) => "map",
            Value::GrowSet(_) => "grow-set",
            Value::ShrinkSet(_) => "shrink-set",
            Value::GrowMap(_) => "grow-map",
            Value::ShrinkMap(_) => "shrink-map",
            Value::GrowArray(_) => "grow-array",
        }
    }

    /// Whether this is [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The number, if this is one.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// Joins two values in their lattice. The join is commutative, associative and idempotent;
    /// it fails only when the two values cannot be joined at all.
    pub fn merge(&self, other: &Value) -> Result<Value, MergeConflict> {
        use Value::*;
        Ok(match (self, other) {
            (Null, v) | (v, Null) => v.clone(),
            (Number(a), Number(b)) => Number(if a.total_cmp(b) == Ordering::Less {
                *b
            } else {
                *a
            }),
            (GrowSet(a), GrowSet(b)) => GrowSet(a.union(b).cloned().collect()),
            (ShrinkSet(a), ShrinkSet(b)) => ShrinkSet(a.intersection(b).cloned().collect()),
            (GrowMap(a), GrowMap(b)) => {
                let mut out = a.clone();
                for (k, vb) in b {
                    let merged = match a.get(k) {
                        Some(va) => va.merge(vb)?,
                        None => vb.clone(),
                    };
                    out.insert(k.clone(), merged);
                }
                GrowMap(out)
            }
            (ShrinkMap(a), ShrinkMap(b)) => {
                let mut out = BTreeMap::new();
                for (k, va) in a {
                    if let Some(vb) = b.get(k) {
                        out.insert(k.clone(), va.merge(vb)?);
                    }
                }
                ShrinkMap(out)
            }
            (GrowArray(a), GrowArray(b)) => {
                let (long, short) = if a.len() >= b.len() { (a, b) } else { (b, a) };
                let mut out = Vec::with_capacity(long.len());
                for (i, x) in long.iter().enumerate() {
                    out.push(match short.get(i) {
                        Some(y) => x.merge(y)?,
                        None => x.clone(),
                    });
                }
                GrowArray(out)
            }
            (a, b) if a == b => a.clone(),
            (a, b) => {
                return Err(MergeConflict {
                    reason: format!("cannot merge {} {} with {} {}", a.kind(), a, b.kind(), b),
                });
            }
        })
    }

    fn rank(&self) -> u8 {
        match self {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Number(_) => 2,
            Value::String(_) => 3,
            Value::Array(_) => 4,
            Value::Map(_) => 5,
            Value::GrowSet(_) => 6,
            Value::ShrinkSet(_) => 7,
            Value::GrowMap(_) => 8,
            Value::ShrinkMap(_) => 9,
            Value::GrowArray(_) => 10,
        }
    }

    /// Feeds a canonical, self-delimiting encoding of the value to `out`: equal values give equal
    /// bytes, whatever order they were built in.
    pub(crate) fn canonical_bytes(&self, out: &mut Vec<u8>) {
        out.push(self.rank());
        match self {
            Value::Null => {}
            Value::Bool(b) => out.push(u8::from(*b)),
            Value::Number(n) => out.extend_from_slice(&n.to_bits().to_le_bytes()),
            Value::String(s) => put_str(out, s),
            Value::Array(xs) | Value::GrowArray(xs) => {
                put_len(out, xs.len());
                xs.iter().for_each(|x| x.canonical_bytes(out));
            }
            Value::GrowSet(xs) | Value::ShrinkSet(xs) => {
                put_len(out, xs.len());
                xs.iter().for_each(|x| x.canonical_bytes(out));
            }
            Value::Map(m) | Value::GrowMap(m) | Value::ShrinkMap(m) => {
                put_len(out, m.len());
                for (k, v) in m {
                    put_str(out, k);
                    v.canonical_bytes(out);
                }
            }
        }
    }
}

pub(crate) fn put_len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u64).to_le_bytes());
}

pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    put_len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Value {}

impl PartialOrd for Value {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A total order, so values can live in sets. Numbers use IEEE total order (so `NaN` equals
/// itself and sorts last; `-0.0` sorts before `0.0`).
impl Ord for Value {
    fn cmp(&self, other: &Self) -> Ordering {
        use Value::*;
        match (self, other) {
            (Null, Null) => Ordering::Equal,
            (Bool(a), Bool(b)) => a.cmp(b),
            (Number(a), Number(b)) => a.total_cmp(b),
            (String(a), String(b)) => a.cmp(b),
            (Array(a), Array(b)) | (GrowArray(a), GrowArray(b)) => a.cmp(b),
            (GrowSet(a), GrowSet(b)) | (ShrinkSet(a), ShrinkSet(b)) => a.cmp(b),
            (Map(a), Map(b)) | (GrowMap(a), GrowMap(b)) | (ShrinkMap(a), ShrinkMap(b)) => a.cmp(b),
            (a, b) => a.rank().cmp(&b.rank()),
        }
    }
}

impl From<f64> for Value {
    fn from(n: f64) -> Self {
        Value::Number(n)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl fmt::Display for Value {
    /// The value's JSON form, cut at 80 characters (for messages).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = serde_json::to_string(self).unwrap_or_else(|_| self.kind().to_owned());
        if s.chars().count() > 80 {
            let cut: std::string::String = s.chars().take(77).collect();
            write!(f, "{cut}...")
        } else {
            f.write_str(&s)
        }
    }
}

// Serialized form: null, booleans, numbers, strings and arrays are plain JSON. A plain map is a
// JSON object, except that a one-key object whose key starts with `$` would read as a tag, so
// such a map is wrapped as {"$map": {...}}. In human-readable formats, infinities and NaN
// (which JSON cannot hold) are {"$number": "inf" | "-inf" | "nan"}. The lattices are one-key objects tagged "$grow-set",
// "$shrink-set", "$grow-map", "$shrink-map" and "$grow-array".
const TAGS: [&str; 7] = [
    "$number",
    "$map",
    "$grow-set",
    "$shrink-set",
    "$grow-map",
    "$shrink-map",
    "$grow-array",
];

struct Tagged<'a, T: ?Sized>(&'static str, &'a T);

impl<T: Serialize + ?Sized> Serialize for Tagged<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry(self.0, self.1)?;
        m.end()
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            // Binary formats such as MessagePack hold every f64 as it is.
            Value::Number(n) if !n.is_finite() && s.is_human_readable() => {
                let name = if n.is_nan() {
                    "nan"
                } else if *n > 0.0 {
                    "inf"
                } else {
                    "-inf"
                };
                Tagged("$number", name).serialize(s)
            }
            Value::Number(n) => {
                // Integral numbers travel as integers: shorter in MessagePack, and `3` not `3.0`
                // in JSON. Both decode back to the same f64.
                if n.fract() == 0.0 && n.abs() < 9.0e15 && !(*n == 0.0 && n.is_sign_negative()) {
                    s.serialize_i64(*n as i64)
                } else {
                    s.serialize_f64(*n)
                }
            }
            Value::String(v) => s.serialize_str(v),
            Value::Array(xs) => {
                let mut seq = s.serialize_seq(Some(xs.len()))?;
                for x in xs {
                    seq.serialize_element(x)?;
                }
                seq.end()
            }
            Value::Map(m) => {
                if m.len() == 1 && m.keys().all(|k| k.starts_with('$')) {
                    Tagged("$map", m).serialize(s)
                } else {
                    m.serialize(s)
                }
            }
            Value::GrowSet(xs) => Tagged("$grow-set", xs).serialize(s),
            Value::ShrinkSet(xs) => Tagged("$shrink-set", xs).serialize(s),
            Value::GrowMap(m) => Tagged("$grow-map", m).serialize(s),
            Value::ShrinkMap(m) => Tagged("$shrink-map", m).serialize(s),
            Value::GrowArray(xs) => Tagged("$grow-array", xs).serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor { depth: 0 })
    }
}

#[derive(Clone, Copy)]
struct ValueVisitor {
    depth: usize,
}

impl ValueVisitor {
    fn nested<E: de::Error>(self) -> Result<ValueVisitor, E> {
        if self.depth >= MAX_DEPTH {
            return Err(E::custom(format!(
                "value nested deeper than {MAX_DEPTH} levels"
            )));
        }
        Ok(ValueVisitor {
            depth: self.depth + 1,
        })
    }
}

impl<'de> de::DeserializeSeed<'de> for ValueVisitor {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// Reads a sequence of values, one level deeper.
struct Items(ValueVisitor);

impl<'de> de::DeserializeSeed<'de> for Items {
    type Value = Vec<Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Value>, D::Error> {
        match d.deserialize_any(self.0)? {
            Value::Array(xs) => Ok(xs),
            other => Err(de::Error::custom(format!(
                "expected an array, found {}",
                other.kind()
            ))),
        }
    }
}

/// Reads a plain object of values, one level deeper.
struct Entries(ValueVisitor);

impl<'de> de::DeserializeSeed<'de> for Entries {
    type Value = BTreeMap<String, Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(EntriesVisitor(self.0))
    }
}

struct EntriesVisitor(ValueVisitor);

impl<'de> Visitor<'de> for EntriesVisitor {
    type Value = BTreeMap<String, Value>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of values")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let inner = self.0.nested()?;
        let mut out = BTreeMap::new();
        while let Some(k) = map.next_key::<String>()? {
            let v = map.next_value_seed(inner)?;
            out.insert(k, v);
        }
        Ok(out)
    }
}

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Bassline value (JSON-like, or a tagged lattice value)")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n as f64))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n as f64))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(Value::Number(n))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.nested()?;
        // Cap the pre-allocation: the hint comes from the sender.
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(v) = seq.next_element_seed(inner)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.nested()?;
        let Some(first) = map.next_key::<String>()? else {
            return Ok(Value::Map(BTreeMap::new()));
        };
        let tagged = TAGS.contains(&first.as_str());
        let value = if tagged {
            match first.as_str() {
                "$number" => match map.next_value::<String>()?.as_str() {
                    "inf" => Value::Number(f64::INFINITY),
                    "-inf" => Value::Number(f64::NEG_INFINITY),
                    "nan" => Value::Number(f64::NAN),
                    other => {
                        return Err(de::Error::custom(format!(
                            "\"$number\" is \"inf\", \"-inf\" or \"nan\", not {other:?}"
                        )));
                    }
                },
                "$map" => Value::Map(map.next_value_seed(Entries(inner))?),
                "$grow-set" => {
                    Value::GrowSet(map.next_value_seed(Items(inner))?.into_iter().collect())
                }
                "$shrink-set" => {
                    Value::ShrinkSet(map.next_value_seed(Items(inner))?.into_iter().collect())
                }
                "$grow-map" => Value::GrowMap(map.next_value_seed(Entries(inner))?),
                "$shrink-map" => Value::ShrinkMap(map.next_value_seed(Entries(inner))?),
                _ => Value::GrowArray(map.next_value_seed(Items(inner))?),
            }
        } else {
            Value::Null
        };
        let mut plain = BTreeMap::new();
        if !tagged {
            plain.insert(first, map.next_value_seed(inner)?);
        }
        while let Some(k) = map.next_key::<String>()? {
            if tagged {
                return Err(de::Error::custom(format!(
                    "a tagged value has exactly one key; found `{k}` beside its tag"
                )));
            }
            let v = map.next_value_seed(inner)?;
            plain.insert(k, v);
        }
        Ok(if tagged { value } else { Value::Map(plain) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn json(v: &Value) -> String {
        serde_json::to_string(v).expect("values serialize")
    }

    #[test]
    fn json_form_is_plain_for_json_kinds_and_tagged_for_lattices() {
        let v: Value = serde_json::from_str(r#"{"a":[1,2.5,"x",null,true]}"#).unwrap();
        assert_eq!(json(&v), r#"{"a":[1,2.5,"x",null,true]}"#);
        let s = Value::grow_set([3.0.into(), 1.0.into()]);
        assert_eq!(json(&s), r#"{"$grow-set":[1,3]}"#);
        let m = Value::Map(BTreeMap::from([("$grow-set".to_owned(), Value::Null)]));
        assert_eq!(json(&m), r#"{"$map":{"$grow-set":null}}"#);
        assert_eq!(serde_json::from_str::<Value>(&json(&m)).unwrap(), m);
    }

    #[test]
    fn non_finite_numbers_survive_json() {
        for n in [f64::INFINITY, f64::NEG_INFINITY, f64::NAN] {
            let v = Value::Number(n);
            let text = json(&v);
            assert!(text.starts_with(r#"{"$number":"#), "{text}");
            assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), v);
        }
        assert!(serde_json::from_str::<Value>(r#"{"$number":"lots"}"#).is_err());
    }

    #[test]
    fn rejects_extra_keys_beside_a_tag_and_deep_nesting() {
        assert!(serde_json::from_str::<Value>(r#"{"$grow-set":[1],"b":2}"#).is_err());
        assert!(serde_json::from_str::<Value>(r#"{"$grow-set":5}"#).is_err());
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 2), "]".repeat(MAX_DEPTH + 2));
        assert!(serde_json::from_str::<Value>(&deep).is_err());
    }

    #[test]
    fn merge_rules() {
        let n = |x: f64| Value::Number(x);
        assert_eq!(n(3.0).merge(&n(5.0)).unwrap(), n(5.0));
        assert_eq!(Value::Null.merge(&n(1.0)).unwrap(), n(1.0));
        assert!(Value::from("a").merge(&Value::from("b")).is_err());
        assert!(n(1.0).merge(&Value::grow_set([])).is_err());
        let ss = Value::shrink_set([n(1.0), n(2.0)]).merge(&Value::shrink_set([n(2.0), n(3.0)]));
        assert_eq!(ss.unwrap(), Value::shrink_set([n(2.0)]));
        let ga = Value::GrowArray(vec![n(1.0)]).merge(&Value::GrowArray(vec![n(0.0), n(7.0)]));
        assert_eq!(ga.unwrap(), Value::GrowArray(vec![n(1.0), n(7.0)]));
    }

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            (-5i32..5).prop_map(|n| Value::Number(f64::from(n))),
            prop::sample::select(vec![
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::NAN,
                0.5,
                -1e300
            ])
            .prop_map(Value::Number),
            "[a-c]".prop_map(Value::String),
            any::<bool>().prop_map(Value::Bool),
        ]
    }

    fn key() -> impl Strategy<Value = String> {
        "[a-d]"
    }

    /// Values of one lattice kind, so that merges mostly succeed.
    fn lattice(kind: u8) -> BoxedStrategy<Value> {
        let num = (-5i32..5).prop_map(|n| Value::Number(f64::from(n)));
        match kind {
            0 => num.boxed(),
            1 => prop::collection::btree_set(scalar(), 0..5)
                .prop_map(Value::GrowSet)
                .boxed(),
            2 => prop::collection::btree_set(scalar(), 0..5)
                .prop_map(Value::ShrinkSet)
                .boxed(),
            3 => prop::collection::btree_map(key(), num, 0..4)
                .prop_map(Value::GrowMap)
                .boxed(),
            4 => prop::collection::btree_map(key(), num, 0..4)
                .prop_map(Value::ShrinkMap)
                .boxed(),
            _ => prop::collection::vec(num, 0..5)
                .prop_map(Value::GrowArray)
                .boxed(),
        }
    }

    fn triple() -> impl Strategy<Value = (Value, Value, Value)> {
        (0u8..6).prop_flat_map(|k| (lattice(k), lattice(k), lattice(k)))
    }

    fn any_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![Just(Value::Null), scalar()];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(key(), inner.clone(), 0..4).prop_map(Value::Map),
                prop::collection::btree_set(inner.clone(), 0..4).prop_map(Value::GrowSet),
                prop::collection::btree_map(key(), inner.clone(), 0..4).prop_map(Value::GrowMap),
                prop::collection::vec(inner, 0..4).prop_map(Value::GrowArray),
            ]
        })
    }

    proptest! {
        #![proptest_config(bassline_testkit::proptest_config(256))]

        #[test]
        fn merge_is_commutative((a, b, _c) in triple()) {
            prop_assert_eq!(a.merge(&b).ok(), b.merge(&a).ok());
        }

        #[test]
        fn merge_is_associative((a, b, c) in triple()) {
            let left = a.merge(&b).and_then(|ab| ab.merge(&c));
            let right = b.merge(&c).and_then(|bc| a.merge(&bc));
            prop_assert_eq!(left.ok(), right.ok());
        }

        #[test]
        fn merge_is_idempotent(a in any_value()) {
            prop_assert_eq!(a.merge(&a).unwrap(), a);
        }

        #[test]
        fn serde_round_trip(a in any_value()) {
            let back: Value = serde_json::from_str(&json(&a)).unwrap();
            prop_assert_eq!(back, a);
        }
    }
}
