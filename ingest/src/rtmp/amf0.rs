//! A bounded AMF0 decoder (AMF0 spec §2) producing `rml_amf0::Amf0Value`s.
//!
//! Used instead of `rml_amf0::deserialize`, which recurses without a depth bound: an 8 KiB
//! command of nested objects overflows a 2 MiB thread stack and aborts the whole process
//! (see the session test `deeply_nested_amf…`). Here nesting deeper than [`MAX_DEPTH`] is an error.

use rml_rtmp::rml_amf0::Amf0Value;
use std::collections::HashMap;
use thiserror::Error;

/// Deepest nesting of objects/arrays accepted. Real RTMP commands nest two or three levels.
pub const MAX_DEPTH: usize = 16;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum Amf0Error {
    #[error("AMF0 value truncated")]
    Truncated,
    #[error("AMF0 nesting deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("unsupported AMF0 marker {0:#04x}")]
    Marker(u8),
    #[error("AMF0 string is not UTF-8")]
    Utf8,
}

/// Decodes consecutive values until the input ends.
pub fn decode_all(mut data: &[u8]) -> Result<Vec<Amf0Value>, Amf0Error> {
    let mut values = Vec::new();
    while !data.is_empty() {
        values.push(value(&mut data, 0)?);
    }
    Ok(values)
}

fn take<'a>(data: &mut &'a [u8], n: usize) -> Result<&'a [u8], Amf0Error> {
    if data.len() < n {
        return Err(Amf0Error::Truncated);
    }
    let (head, rest) = data.split_at(n);
    *data = rest;
    Ok(head)
}

fn u16_be(data: &mut &[u8]) -> Result<usize, Amf0Error> {
    let b = take(data, 2)?;
    Ok(u16::from_be_bytes([b[0], b[1]]) as usize)
}

fn u32_be(data: &mut &[u8]) -> Result<usize, Amf0Error> {
    let b = take(data, 4)?;
    Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

fn utf8(data: &mut &[u8], len: usize) -> Result<String, Amf0Error> {
    String::from_utf8(take(data, len)?.to_vec()).map_err(|_| Amf0Error::Utf8)
}

fn value(data: &mut &[u8], depth: usize) -> Result<Amf0Value, Amf0Error> {
    if depth > MAX_DEPTH {
        return Err(Amf0Error::TooDeep);
    }
    let marker = take(data, 1)?[0];
    Ok(match marker {
        0x00 => {
            let b = take(data, 8)?;
            Amf0Value::Number(f64::from_be_bytes(b.try_into().expect("8 bytes")))
        }
        0x01 => Amf0Value::Boolean(take(data, 1)?[0] != 0),
        0x02 => {
            let len = u16_be(data)?;
            Amf0Value::Utf8String(utf8(data, len)?)
        }
        0x03 => Amf0Value::Object(properties(data, depth)?),
        0x05 => Amf0Value::Null,
        0x06 => Amf0Value::Undefined,
        0x08 => {
            u32_be(data)?; // the count is advisory; the properties end with an end marker
            Amf0Value::Object(properties(data, depth)?)
        }
        0x0a => {
            let count = u32_be(data)?;
            // Every element takes at least one byte: the input bounds the allocation.
            let mut items = Vec::with_capacity(count.min(data.len()));
            for _ in 0..count {
                items.push(value(data, depth + 1)?);
            }
            Amf0Value::StrictArray(items)
        }
        0x0b => {
            let b = take(data, 10)?; // milliseconds (f64) + time zone (s16)
            Amf0Value::Number(f64::from_be_bytes(b[..8].try_into().expect("8 bytes")))
        }
        0x0c => {
            let len = u32_be(data)?;
            Amf0Value::Utf8String(utf8(data, len)?)
        }
        m => return Err(Amf0Error::Marker(m)),
    })
}

fn properties(data: &mut &[u8], depth: usize) -> Result<HashMap<String, Amf0Value>, Amf0Error> {
    let mut map = HashMap::new();
    loop {
        let len = u16_be(data)?;
        if len == 0 {
            if take(data, 1)?[0] == 0x09 {
                return Ok(map);
            }
            return Err(Amf0Error::Marker(0));
        }
        let key = utf8(data, len)?;
        map.insert(key, value(data, depth + 1)?);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rml_rtmp::rml_amf0::serialize;

    #[test]
    fn round_trips_rml_serialized_values() {
        let mut object = HashMap::new();
        object.insert("app".to_string(), Amf0Value::Utf8String("live".into()));
        object.insert(
            "nested".to_string(),
            Amf0Value::Object(HashMap::from([("n".to_string(), Amf0Value::Number(2.5))])),
        );
        let values = vec![
            Amf0Value::Utf8String("connect".into()),
            Amf0Value::Number(1.0),
            Amf0Value::Object(object),
            Amf0Value::Null,
            Amf0Value::Boolean(true),
            Amf0Value::StrictArray(vec![Amf0Value::Undefined, Amf0Value::Number(3.0)]),
        ];
        let bytes = serialize(&values).unwrap();
        assert_eq!(decode_all(&bytes).unwrap(), values);
    }

    #[test]
    fn ecma_array_is_an_object() {
        let bytes = [0x08, 0, 0, 0, 1, 0, 1, b'w', 0x00, 0x40, 0x94, 0, 0, 0, 0, 0, 0, 0, 0, 0x09];
        let values = decode_all(&bytes).unwrap();
        assert_eq!(values, vec![Amf0Value::Object(HashMap::from([("w".to_string(), Amf0Value::Number(1280.0))]))]);
    }

    #[test]
    fn hostile_inputs_are_errors() {
        let mut deep = Vec::new();
        for _ in 0..100_000 {
            deep.extend_from_slice(&[0x03, 0, 1, b'a']);
        }
        assert_eq!(decode_all(&deep), Err(Amf0Error::TooDeep));
        assert_eq!(decode_all(&[0x0a, 0xff, 0xff, 0xff, 0xff]), Err(Amf0Error::Truncated));
        assert_eq!(decode_all(&[0x02, 0, 5, b'a']), Err(Amf0Error::Truncated));
        assert_eq!(decode_all(&[0x02, 0, 1, 0xff]), Err(Amf0Error::Utf8));
        assert_eq!(decode_all(&[0x11]), Err(Amf0Error::Marker(0x11)));
        assert_eq!(decode_all(&[0x03, 0, 0, 0x07]), Err(Amf0Error::Marker(0)));
    }
}
