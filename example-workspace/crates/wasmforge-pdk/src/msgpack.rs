//! MessagePack for `#[plugin_fn(wire = "msgpack")]` (docs/ABI.md, "The MessagePack
//! wire"): a serde serializer and deserializer with the same shapes as serde_json's,
//! so a Python value means the same thing on either wire. Structs are maps keyed by
//! field name, sequences and tuples arrays, `None` and `()` nil, enums externally
//! tagged (a unit variant its name, any other a one-entry map), integers in their
//! smallest form, bytes (`serialize_bytes`) bin. Map keys are strings, as in JSON:
//! an integer key is written as its decimal text and read back from it.

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use serde::ser::{self, Serialize};
use std::fmt;

/// How deep arrays and maps may nest, as serde_json's recursion limit.
pub const MAX_DEPTH: usize = 128;

/// What went wrong encoding or decoding, as one line.
#[derive(Debug)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

/// `value` as MessagePack.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    let mut serializer = Serializer { out: Vec::with_capacity(64) };
    value.serialize(&mut serializer)?;
    Ok(serializer.out)
}

/// One value from all of `input`: trailing bytes are an error.
pub fn from_slice<'de, T: serde::Deserialize<'de>>(input: &'de [u8]) -> Result<T, Error> {
    let mut deserializer = Deserializer::new(input);
    let value = T::deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

// ---- encoding -----------------------------------------------------------------

pub struct Serializer {
    out: Vec<u8>,
}

impl Serializer {
    fn uint(&mut self, v: u64) {
        if v < 128 {
            self.out.push(v as u8);
        } else if v <= 0xff {
            self.out.extend_from_slice(&[0xcc, v as u8]);
        } else if v <= 0xffff {
            self.out.push(0xcd);
            self.out.extend_from_slice(&(v as u16).to_be_bytes());
        } else if v <= 0xffff_ffff {
            self.out.push(0xce);
            self.out.extend_from_slice(&(v as u32).to_be_bytes());
        } else {
            self.out.push(0xcf);
            self.out.extend_from_slice(&v.to_be_bytes());
        }
    }

    fn int(&mut self, v: i64) {
        if v >= 0 {
            self.uint(v as u64);
        } else if v >= -32 {
            self.out.push(v as u8);
        } else if v >= i8::MIN as i64 {
            self.out.extend_from_slice(&[0xd0, v as u8]);
        } else if v >= i16::MIN as i64 {
            self.out.push(0xd1);
            self.out.extend_from_slice(&(v as i16).to_be_bytes());
        } else if v >= i32::MIN as i64 {
            self.out.push(0xd2);
            self.out.extend_from_slice(&(v as i32).to_be_bytes());
        } else {
            self.out.push(0xd3);
            self.out.extend_from_slice(&v.to_be_bytes());
        }
    }

    /// A header with a length: the one-byte form under `small`, else 16 or 32 bits.
    fn header(&mut self, fix: u8, small: usize, wide: u8, len: usize) {
        if len < small {
            self.out.push(fix | len as u8);
        } else if len <= 0xffff {
            self.out.push(wide);
            self.out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            self.out.push(wide + 1);
            self.out.extend_from_slice(&(len as u32).to_be_bytes());
        }
    }

    fn str(&mut self, v: &str) {
        let len = v.len();
        if len < 32 {
            self.out.push(0xa0 | len as u8);
        } else if len <= 0xff {
            self.out.extend_from_slice(&[0xd9, len as u8]);
        } else {
            self.header(0, 0, 0xda, len);
        }
        self.out.extend_from_slice(v.as_bytes());
    }

    /// A container: its header now when the length is known, else a 32-bit one patched at the end.
    fn begin(&mut self, map: bool, len: Option<usize>) -> Compound<'_> {
        let (fix, small, wide) = if map { (0x80, 16, 0xde) } else { (0x90, 16, 0xdc) };
        let patch = match len {
            Some(len) => {
                self.header(fix, small, wide, len);
                None
            }
            None => {
                let at = self.out.len();
                self.out.extend_from_slice(&[wide + 1, 0, 0, 0, 0]);
                Some(at)
            }
        };
        Compound { ser: self, patch, expect: len, count: 0 }
    }

    /// A map key: strings as they are, integers as their decimal text (serde_json's rule).
    fn key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        let start = self.out.len();
        key.serialize(&mut *self)?;
        let marker = self.out[start];
        if (0xa0..=0xbf).contains(&marker) || (0xd9..=0xdb).contains(&marker) {
            return Ok(());
        }
        let text = {
            let mut reader = Deserializer::new(&self.out[start..]);
            match reader.integer() {
                Ok(Some(v)) if reader.pos == self.out.len() - start => v.to_string(),
                _ => return Err(Error("a map key must be a string or an integer".to_string())),
            }
        };
        self.out.truncate(start);
        self.str(&text);
        Ok(())
    }
}

pub struct Compound<'a> {
    ser: &'a mut Serializer,
    patch: Option<usize>,
    expect: Option<usize>,
    count: usize,
}

impl<'a> Compound<'a> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.count += 1;
        value.serialize(&mut *self.ser)
    }

    fn entry<K: Serialize + ?Sized, V: Serialize + ?Sized>(&mut self, key: &K, value: &V) -> Result<(), Error> {
        self.count += 1;
        self.ser.key(key)?;
        value.serialize(&mut *self.ser)
    }

    fn finish(self) -> Result<(), Error> {
        if let Some(at) = self.patch {
            self.ser.out[at + 1..at + 5].copy_from_slice(&(self.count as u32).to_be_bytes());
        }
        match self.expect {
            Some(n) if n != self.count => {
                Err(Error(format!("a container announced {} elements and had {}", n, self.count)))
            }
            _ => Ok(()),
        }
    }
}

impl<'a> ser::Serializer for &'a mut Serializer {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.out.push(if v { 0xc3 } else { 0xc2 });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.int(v as i64);
        Ok(())
    }
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.int(v as i64);
        Ok(())
    }
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.int(v as i64);
        Ok(())
    }
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.int(v);
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.uint(v as u64);
        Ok(())
    }
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.uint(v as u64);
        Ok(())
    }
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.uint(v as u64);
        Ok(())
    }
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.uint(v);
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.out.push(0xca);
        self.out.extend_from_slice(&v.to_be_bytes());
        Ok(())
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        self.out.push(0xcb);
        self.out.extend_from_slice(&v.to_be_bytes());
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.str(v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.str(v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        if v.len() <= 0xff {
            self.out.extend_from_slice(&[0xc4, v.len() as u8]);
        } else {
            self.header(0, 0, 0xc5, v.len());
        }
        self.out.extend_from_slice(v);
        Ok(())
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.out.push(0xc0);
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.out.push(0xc0);
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Result<(), Error> {
        self.str(variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _name: &'static str, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.out.push(0x81);
        self.str(variant);
        value.serialize(self)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Compound<'a>, Error> {
        Ok(self.begin(false, len))
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'a>, Error> {
        Ok(self.begin(false, Some(len)))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Compound<'a>, Error> {
        Ok(self.begin(false, Some(len)))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, Error> {
        self.out.push(0x81);
        self.str(variant);
        Ok(self.begin(false, Some(len)))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Compound<'a>, Error> {
        Ok(self.begin(true, len))
    }
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<Compound<'a>, Error> {
        Ok(self.begin(true, Some(len)))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, Error> {
        self.out.push(0x81);
        self.str(variant);
        Ok(self.begin(true, Some(len)))
    }
}

macro_rules! elements {
    ($($trait:ident :: $method:ident),*) => {$(
        impl<'a> ser::$trait for Compound<'a> {
            type Ok = ();
            type Error = Error;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
                self.element(value)
            }
            fn end(self) -> Result<(), Error> {
                self.finish()
            }
        }
    )*};
}

elements!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl<'a> ser::SerializeMap for Compound<'a> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.count += 1;
        self.ser.key(key)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(&mut *self.ser)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl<'a> ser::SerializeStruct for Compound<'a> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        self.entry(key, value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl<'a> ser::SerializeStructVariant for Compound<'a> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        self.entry(key, value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

// ---- decoding -----------------------------------------------------------------

pub struct Deserializer<'de> {
    input: &'de [u8],
    pos: usize,
    depth: usize,
    /// Reading a map key: an integer type may be read from a string (serde_json's rule).
    key: bool,
}

fn truncated() -> Error {
    Error("truncated MessagePack".to_string())
}

impl<'de> Deserializer<'de> {
    pub fn new(input: &'de [u8]) -> Self {
        Deserializer { input, pos: 0, depth: 0, key: false }
    }

    /// The length of the array that comes next, or None (nothing read) if it is something else.
    pub fn array_header(&mut self) -> Result<Option<usize>, Error> {
        self.container(false)
    }

    /// Error unless every byte was read.
    pub fn end(&self) -> Result<(), Error> {
        if self.pos == self.input.len() {
            Ok(())
        } else {
            Err(Error(format!("{} trailing bytes after the MessagePack value", self.input.len() - self.pos)))
        }
    }

    fn peek(&self) -> Result<u8, Error> {
        self.input.get(self.pos).copied().ok_or_else(truncated)
    }

    fn take(&mut self, n: usize) -> Result<&'de [u8], Error> {
        let end = self.pos.checked_add(n).filter(|&end| end <= self.input.len()).ok_or_else(truncated)?;
        let bytes = &self.input[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn be(&mut self, n: usize) -> Result<u64, Error> {
        Ok(self.take(n)?.iter().fold(0u64, |acc, &b| (acc << 8) | b as u64))
    }

    /// An integer of any width, or None (nothing read) when the next value is not one.
    fn integer(&mut self) -> Result<Option<i128>, Error> {
        let marker = self.peek()?;
        let value = match marker {
            0x00..=0x7f => marker as i128,
            0xe0..=0xff => marker as i8 as i128,
            0xcc..=0xcf => {
                self.pos += 1;
                return Ok(Some(self.be(1 << (marker - 0xcc))? as i128));
            }
            0xd0..=0xd3 => {
                self.pos += 1;
                let bytes = 1usize << (marker - 0xd0);
                let raw = self.be(bytes)?;
                let shift = 64 - 8 * bytes as u32;
                return Ok(Some(((raw << shift) as i64 >> shift) as i128));
            }
            _ => return Ok(None),
        };
        self.pos += 1;
        Ok(Some(value))
    }

    /// An integer for a Rust integer type: any width, range-checked; in a map key, also decimal text.
    fn integer_for(&mut self, what: &str) -> Result<i128, Error> {
        if let Some(v) = self.integer()? {
            return Ok(v);
        }
        if self.key {
            if let Some(text) = self.text()? {
                return text.parse::<i128>().map_err(|_| Error(format!("invalid {} map key {:?}", what, text)));
            }
        }
        Err(self.unexpected(what))
    }

    /// A str, or None (nothing read) when the next value is not one.
    fn text(&mut self) -> Result<Option<&'de str>, Error> {
        let marker = self.peek()?;
        let len = match marker {
            0xa0..=0xbf => {
                self.pos += 1;
                (marker & 0x1f) as usize
            }
            0xd9..=0xdb => {
                self.pos += 1;
                self.be(1 << (marker - 0xd9))? as usize
            }
            _ => return Ok(None),
        };
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes).map(Some).map_err(|e| Error(format!("a string is not valid UTF-8: {}", e)))
    }

    /// A bin, or None (nothing read) when the next value is not one.
    fn bin(&mut self) -> Result<Option<&'de [u8]>, Error> {
        let marker = self.peek()?;
        if !(0xc4..=0xc6).contains(&marker) {
            return Ok(None);
        }
        self.pos += 1;
        let len = self.be(1 << (marker - 0xc4))? as usize;
        self.take(len).map(Some)
    }

    /// The element count of an array (`map` false) or map header, or None (nothing read).
    fn container(&mut self, map: bool) -> Result<Option<usize>, Error> {
        let marker = self.peek()?;
        let (fix, wide) = if map { (0x80, 0xde) } else { (0x90, 0xdc) };
        let len = if marker & 0xf0 == fix {
            self.pos += 1;
            (marker & 0x0f) as usize
        } else if marker == wide || marker == wide + 1 {
            self.pos += 1;
            self.be(if marker == wide { 2 } else { 4 })? as usize
        } else {
            return Ok(None);
        };
        // Each element takes at least one byte: a longer claim is a lie, refused before any allocation.
        if len > self.input.len() - self.pos {
            return Err(truncated());
        }
        if self.depth >= MAX_DEPTH {
            return Err(Error(format!("nested more than {} arrays and maps deep", MAX_DEPTH)));
        }
        Ok(Some(len))
    }

    fn unexpected(&self, expected: &str) -> Error {
        let found = match self.input.get(self.pos) {
            None => return truncated(),
            Some(&m) => match m {
                0xc0 => "nil",
                0xc2 | 0xc3 => "a boolean",
                0x00..=0x7f | 0xe0..=0xff | 0xcc..=0xcf | 0xd0..=0xd3 => "an integer",
                0xca | 0xcb => "a float",
                0xa0..=0xbf | 0xd9..=0xdb => "a string",
                0xc4..=0xc6 => "bytes",
                0x90..=0x9f | 0xdc | 0xdd => "an array",
                0x80..=0x8f | 0xde | 0xdf => "a map",
                0xc7..=0xc9 | 0xd4..=0xd8 => "an ext type (not supported)",
                _ => "an unused MessagePack marker",
            },
        };
        Error(format!("invalid type: {}, expected {}", found, expected))
    }

    fn visit_array<V: Visitor<'de>>(&mut self, len: usize, visitor: V) -> Result<V::Value, Error> {
        self.depth += 1;
        let mut access = Elements { de: self, left: len };
        let value = visitor.visit_seq(&mut access)?;
        let left = access.left;
        self.depth -= 1;
        if left != 0 {
            return Err(Error(format!("an array of {} elements has {} more than expected", len, left)));
        }
        Ok(value)
    }

    fn visit_map<V: Visitor<'de>>(&mut self, len: usize, visitor: V) -> Result<V::Value, Error> {
        self.depth += 1;
        let mut access = Elements { de: self, left: len };
        let value = visitor.visit_map(&mut access)?;
        let left = access.left;
        self.depth -= 1;
        if left != 0 {
            return Err(Error(format!("a map of {} entries has {} more than expected", len, left)));
        }
        Ok(value)
    }

    fn float(&mut self, what: &str) -> Result<f64, Error> {
        match self.peek()? {
            0xca => {
                self.pos += 1;
                Ok(f32::from_bits(self.be(4)? as u32) as f64)
            }
            0xcb => {
                self.pos += 1;
                Ok(f64::from_bits(self.be(8)?))
            }
            _ => match self.integer()? {
                Some(v) => Ok(v as f64),
                None => Err(self.unexpected(what)),
            },
        }
    }
}

struct Elements<'a, 'de> {
    de: &'a mut Deserializer<'de>,
    left: usize,
}

impl<'a, 'de> de::SeqAccess<'de> for Elements<'a, 'de> {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.de).map(Some)
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

impl<'a, 'de> de::MapAccess<'de> for Elements<'a, 'de> {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        self.de.key = true;
        let key = seed.deserialize(&mut *self.de);
        self.de.key = false;
        key.map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        seed.deserialize(&mut *self.de)
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

/// The bytes of a bin, read as a sequence of u8 (for `Vec<u8>` and `[u8; N]`).
struct BinElements<'de> {
    bytes: std::slice::Iter<'de, u8>,
}

impl<'de> de::SeqAccess<'de> for BinElements<'de> {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
        match self.bytes.next() {
            Some(&b) => seed.deserialize(b.into_deserializer()).map(Some),
            None => Ok(None),
        }
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.bytes.len())
    }
}

macro_rules! integers {
    ($($method:ident $visit:ident $t:ty),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            let v = self.integer_for(stringify!($t))?;
            match <$t>::try_from(v) {
                Ok(v) => visitor.$visit(v),
                Err(_) => Err(Error(format!("integer {} is out of range for {}", v, stringify!($t)))),
            }
        }
    )*};
}

impl<'de, 'a> de::Deserializer<'de> for &'a mut Deserializer<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if let Some(v) = self.integer()? {
            return if v < 0 { visitor.visit_i64(v as i64) } else { visitor.visit_u64(v as u64) };
        }
        if let Some(text) = self.text()? {
            return visitor.visit_borrowed_str(text);
        }
        if let Some(bytes) = self.bin()? {
            return visitor.visit_borrowed_bytes(bytes);
        }
        if let Some(len) = self.container(false)? {
            return self.visit_array(len, visitor);
        }
        if let Some(len) = self.container(true)? {
            return self.visit_map(len, visitor);
        }
        match self.peek()? {
            0xc0 => {
                self.pos += 1;
                visitor.visit_unit()
            }
            0xc2 | 0xc3 => {
                let v = self.peek()? == 0xc3;
                self.pos += 1;
                visitor.visit_bool(v)
            }
            0xca => {
                self.pos += 1;
                visitor.visit_f32(f32::from_bits(self.be(4)? as u32))
            }
            0xcb => {
                self.pos += 1;
                visitor.visit_f64(f64::from_bits(self.be(8)?))
            }
            _ => Err(self.unexpected("a value")),
        }
    }

    integers!(
        deserialize_i8 visit_i8 i8, deserialize_i16 visit_i16 i16, deserialize_i32 visit_i32 i32,
        deserialize_i64 visit_i64 i64, deserialize_i128 visit_i128 i128, deserialize_u8 visit_u8 u8,
        deserialize_u16 visit_u16 u16, deserialize_u32 visit_u32 u32, deserialize_u64 visit_u64 u64,
        deserialize_u128 visit_u128 u128
    );

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let v = self.float("f32")?;
        visitor.visit_f32(v as f32)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let v = self.float("f64")?;
        visitor.visit_f64(v)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.peek()? == 0xc0 {
            self.pos += 1;
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if let Some(bytes) = self.bin()? {
            let mut access = BinElements { bytes: bytes.iter() };
            let value = visitor.visit_seq(&mut access)?;
            if access.bytes.len() != 0 {
                return Err(Error(format!("bytes of length {} are longer than expected", bytes.len())));
            }
            return Ok(value);
        }
        match self.container(false)? {
            Some(len) => self.visit_array(len, visitor),
            None => Err(self.unexpected("an array")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        if let Some(text) = self.text()? {
            return visitor.visit_enum(de::value::BorrowedStrDeserializer::new(text));
        }
        match self.container(true)? {
            Some(1) => {
                self.depth += 1;
                let value = visitor.visit_enum(&mut *self)?;
                self.depth -= 1;
                Ok(value)
            }
            Some(n) => Err(Error(format!("an enum must be a string or a map of one entry, not of {}", n))),
            None => Err(self.unexpected("an enum (a string or a map of one entry)")),
        }
    }

    serde::forward_to_deserialize_any! {
        bool char str string unit unit_struct map struct identifier ignored_any
    }
}

impl<'de, 'a> de::EnumAccess<'de> for &'a mut Deserializer<'de> {
    type Error = Error;
    type Variant = Self;
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), Error> {
        let variant = seed.deserialize(&mut *self)?;
        Ok((variant, self))
    }
}

impl<'de, 'a> de::VariantAccess<'de> for &'a mut Deserializer<'de> {
    type Error = Error;
    fn unit_variant(self) -> Result<(), Error> {
        serde::Deserialize::deserialize(self)
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        seed.deserialize(self)
    }
    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_seq(self, visitor)
    }
    fn struct_variant<V: Visitor<'de>>(self, _fields: &'static [&'static str], visitor: V) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_any(self, visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};
    use std::collections::BTreeMap;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    enum Shape {
        Dot,
        Circle(f64),
        Pair(i32, i32),
        Rect { w: u32, h: u32 },
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Record {
        name: String,
        big: u64,
        small: i64,
        ratio: f32,
        tags: Vec<String>,
        maybe: Option<Vec<Shape>>,
        pair: (u8, char),
        counts: BTreeMap<u32, String>,
        unit: (),
    }

    fn record() -> Record {
        let mut counts = BTreeMap::new();
        counts.insert(7, "seven".to_string());
        Record {
            name: "héllo ✓".repeat(20),
            big: u64::MAX,
            small: i64::MIN,
            ratio: 1.5,
            tags: vec![],
            maybe: Some(vec![Shape::Dot, Shape::Circle(2.5), Shape::Pair(-1, 70000), Shape::Rect { w: 1, h: 300 }]),
            pair: (255, 'ß'),
            counts,
            unit: (),
        }
    }

    #[test]
    fn round_trips() {
        let bytes = to_vec(&record()).unwrap();
        assert_eq!(from_slice::<Record>(&bytes).unwrap(), record());
    }

    #[test]
    fn smallest_integers_and_shapes() {
        assert_eq!(to_vec(&5u64).unwrap(), [5]);
        assert_eq!(to_vec(&-3i64).unwrap(), [0xfd]);
        assert_eq!(to_vec(&200u8).unwrap(), [0xcc, 200]);
        assert_eq!(to_vec(&-200i32).unwrap(), [0xd1, 0xff, 0x38]);
        assert_eq!(to_vec(&Shape::Dot).unwrap(), [0xa3, b'D', b'o', b't']);
        assert_eq!(to_vec(&None::<u8>).unwrap(), [0xc0]);
        assert_eq!(from_slice::<u8>(&[0xcf, 0, 0, 0, 0, 0, 0, 0, 9]).unwrap(), 9);
        assert_eq!(from_slice::<Vec<u8>>(&[0xc4, 2, 1, 2]).unwrap(), vec![1, 2]);
        assert_eq!(from_slice::<Vec<u8>>(&[0x92, 1, 2]).unwrap(), vec![1, 2]);
    }

    #[test]
    fn refuses_bad_input() {
        assert!(from_slice::<u8>(&[0xcd, 1, 0]).unwrap_err().to_string().contains("out of range"));
        assert!(from_slice::<u32>(&[0xcd, 1]).unwrap_err().to_string().contains("truncated"));
        assert!(from_slice::<u32>(&[1, 2]).unwrap_err().to_string().contains("trailing"));
        assert!(from_slice::<Vec<u8>>(&[0xdd, 0xff, 0xff, 0xff, 0xff]).is_err());
        let deep = [0x91u8; 200];
        let error = from_slice::<serde::de::IgnoredAny>(&deep).unwrap_err().to_string();
        assert!(error.contains("nested more than 128"), "{}", error);
        assert!(from_slice::<String>(&[0xd4, 1, 1]).unwrap_err().to_string().contains("ext type"));
    }
}
