//! AMF0 (Adobe Action Message Format 0), the encoding of RTMP commands and FLV script
//! data. Decoding checks every length against the input and bounds nesting, so a
//! hostile message is an error, never a panic or a large allocation.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(f64),
    Bool(bool),
    String(String),
    Object(Vec<(String, Value)>),
    Null,
    Undefined,
    EcmaArray(Vec<(String, Value)>),
    StrictArray(Vec<Value>),
}

#[derive(Debug, PartialEq, Eq)]
pub struct Amf0Error(pub &'static str);

impl fmt::Display for Amf0Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed AMF0: {}", self.0)
    }
}

impl std::error::Error for Amf0Error {}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// A property of an object or ECMA array.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(p) | Value::EcmaArray(p) => {
                p.iter().find(|(k, _)| k == key).map(|(_, v)| v)
            }
            _ => None,
        }
    }
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    max_depth: usize,
    /// Values still allowed: a message of a million one-byte nulls would otherwise
    /// become a million 40-byte `Value`s.
    elements_left: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Amf0Error> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.data.len())
            .ok_or(Amf0Error("length beyond the message"))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, Amf0Error> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<usize, Amf0Error> {
        let b = self.take(2)?;
        Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }

    fn u32(&mut self) -> Result<usize, Amf0Error> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    fn string(&mut self, len: usize) -> Result<String, Amf0Error> {
        let b = self.take(len)?;
        Ok(String::from_utf8_lossy(b).into_owned())
    }

    fn properties(&mut self, depth: usize) -> Result<Vec<(String, Value)>, Amf0Error> {
        let mut props = Vec::new();
        loop {
            let len = self.u16()?;
            if len == 0 && self.data.get(self.pos) == Some(&9) {
                self.pos += 1;
                return Ok(props);
            }
            let key = self.string(len)?;
            props.push((key, self.value(depth + 1)?));
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, Amf0Error> {
        if depth > self.max_depth {
            return Err(Amf0Error("nested deeper than amfMaxDepth"));
        }
        self.elements_left = self
            .elements_left
            .checked_sub(1)
            .ok_or(Amf0Error("more values than amfMaxElements"))?;
        Ok(match self.u8()? {
            0 => Value::Number(f64::from_be_bytes(
                self.take(8)?.try_into().map_err(|_| Amf0Error("number"))?,
            )),
            1 => Value::Bool(self.u8()? != 0),
            2 => {
                let len = self.u16()?;
                Value::String(self.string(len)?)
            }
            3 => Value::Object(self.properties(depth)?),
            5 => Value::Null,
            6 => Value::Undefined,
            8 => {
                self.u32()?; // associative count: a hint, the end marker decides
                Value::EcmaArray(self.properties(depth)?)
            }
            10 => {
                let n = self.u32()?;
                // Each element takes at least one byte: a count beyond that is a lie.
                if n > self.data.len() - self.pos {
                    return Err(Amf0Error("strict array count beyond the message"));
                }
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Value::StrictArray(items)
            }
            11 => {
                self.take(10)?; // date: f64 + time zone
                Value::Undefined
            }
            12 => {
                let len = self.u32()?;
                Value::String(self.string(len)?)
            }
            _ => return Err(Amf0Error("unsupported type marker")),
        })
    }
}

/// Decodes every value in `data`, within the default `amfMaxDepth` and `amfMaxElements`.
pub fn decode_all(data: &[u8]) -> Result<Vec<Value>, Amf0Error> {
    let l = super::limits::InputLimits::default();
    decode_limited(data, l.amf_depth, l.amf_elements)
}

/// Decodes every value in `data`: at most `max_elements` values (nested ones counted)
/// nested at most `max_depth` deep.
pub fn decode_limited(
    data: &[u8],
    max_depth: usize,
    max_elements: usize,
) -> Result<Vec<Value>, Amf0Error> {
    let mut r = Reader {
        data,
        pos: 0,
        max_depth,
        elements_left: max_elements,
    };
    let mut out = Vec::new();
    while r.pos < data.len() {
        out.push(r.value(0)?);
    }
    Ok(out)
}

fn encode_props(out: &mut Vec<u8>, props: &[(String, Value)]) {
    for (k, v) in props {
        out.extend_from_slice(&(k.len().min(0xffff) as u16).to_be_bytes());
        out.extend_from_slice(&k.as_bytes()[..k.len().min(0xffff)]);
        encode(out, v);
    }
    out.extend_from_slice(&[0, 0, 9]);
}

pub fn encode(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Number(n) => {
            out.push(0);
            out.extend_from_slice(&n.to_be_bytes());
        }
        Value::Bool(b) => out.extend_from_slice(&[1, u8::from(*b)]),
        Value::String(s) if s.len() > 0xffff => {
            out.push(12);
            out.extend_from_slice(&(s.len() as u32).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        Value::String(s) => {
            out.push(2);
            out.extend_from_slice(&(s.len() as u16).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        Value::Object(p) => {
            out.push(3);
            encode_props(out, p);
        }
        Value::Null => out.push(5),
        Value::Undefined => out.push(6),
        Value::EcmaArray(p) => {
            out.push(8);
            out.extend_from_slice(&(p.len() as u32).to_be_bytes());
            encode_props(out, p);
        }
        Value::StrictArray(items) => {
            out.push(10);
            out.extend_from_slice(&(items.len() as u32).to_be_bytes());
            for i in items {
                encode(out, i);
            }
        }
    }
}

pub fn encode_all(values: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        encode(&mut out, v);
    }
    out
}

/// An object from string keys, for building replies.
pub fn object(props: &[(&str, Value)]) -> Value {
    Value::Object(
        props
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let values = vec![
            Value::String("connect".into()),
            Value::Number(1.0),
            object(&[
                ("app", Value::String("live".into())),
                ("fpad", Value::Bool(false)),
            ]),
            Value::Null,
            Value::EcmaArray(vec![("width".into(), Value::Number(640.0))]),
            Value::StrictArray(vec![Value::Undefined, Value::Number(2.5)]),
        ];
        let bytes = encode_all(&values);
        assert_eq!(decode_all(&bytes).unwrap(), values);
        assert_eq!(values[2].get("app").and_then(Value::as_str), Some("live"));
    }

    #[test]
    fn hostile_input_is_an_error() {
        assert!(decode_all(&[2, 0xff, 0xff, b'c']).is_err()); // string longer than the data
        assert!(decode_all(&[12, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(decode_all(&[10, 0xff, 0xff, 0xff, 0xff, 5]).is_err()); // absurd array count
        assert!(decode_all(&[3, 0, 1, b'a']).is_err()); // object without end
        assert!(decode_all(&[0, 1, 2]).is_err());
        assert!(decode_all(&[0x42]).is_err());
        let deep: Vec<u8> = std::iter::repeat_n([3u8, 0, 1, b'a'], 40)
            .flatten()
            .collect();
        assert!(decode_all(&deep).is_err());
    }

    #[test]
    fn limits() {
        // Objects nested 3 deep: depth 0 (outer), 1, 2, then a number at 3.
        let nested = |n: usize| {
            let mut b = Vec::new();
            for _ in 0..n {
                b.extend([3u8, 0, 1, b'a']);
            }
            b.extend([0u8; 9]);
            for _ in 0..n {
                b.extend([0u8, 0, 9]);
            }
            b
        };
        assert!(decode_limited(&nested(3), 3, 100).is_ok());
        assert_eq!(
            decode_limited(&nested(4), 3, 100),
            Err(Amf0Error("nested deeper than amfMaxDepth"))
        );
        // A strict array of 100 nulls is 101 values.
        let mut arr = vec![10u8, 0, 0, 0, 100];
        arr.extend([5u8; 100]);
        assert!(decode_limited(&arr, 16, 101).is_ok());
        assert_eq!(
            decode_limited(&arr, 16, 100),
            Err(Amf0Error("more values than amfMaxElements"))
        );
        // Top-level values count too.
        assert!(decode_limited(&[5u8; 17], 16, 16).is_err());
    }
}
