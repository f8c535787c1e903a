//! Reading a GGUF header from any `Read`, bounded against corrupt and hostile input.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::io::{self, Read};

use super::{
    DEFAULT_ALIGNMENT, GGUF_MAGIC, GgmlType, GgufArray, GgufError, GgufHeader, GgufValue,
    GgufValueType, MAX_ARRAY_DEPTH, MAX_ARRAY_LEN, MAX_ARRAY_VALUES_KEPT, MAX_DIMS,
    MAX_HEADER_BYTES, MAX_METADATA_KV, MAX_STRING_LEN, MAX_TENSORS, TensorInfo,
};

/// Reads a GGUF header (v2 or v3, little-endian): magic, version, metadata and tensor infos.
///
/// Stops at the end of the tensor infos: no tensor data is read, and the reader is left just
/// before the alignment padding. Large arrays (more than [`MAX_ARRAY_VALUES_KEPT`] elements) are
/// skipped, not stored. Reads in many small pieces, so give it a buffered reader.
///
/// # Errors
///
/// [`GgufError`] for anything malformed: a bad magic, version 1, a big-endian file, a
/// truncated header, an unknown value or tensor type, a length or count beyond the limits, a
/// duplicate key or tensor, a misaligned tensor, or an I/O failure.
pub fn read_header<R: Read>(reader: &mut R) -> Result<GgufHeader, GgufError> {
    let mut input = Input {
        inner: reader,
        pos: 0,
    };

    let magic = input.u32(Ctx::Header("the magic"))?;
    if magic != GGUF_MAGIC {
        return Err(GgufError::BadMagic { found: magic });
    }
    let version = input.u32(Ctx::Header("the version"))?;
    check_version(version)?;

    let n_tensors = input.u64(Ctx::Header("the tensor count"))?;
    if n_tensors > MAX_TENSORS {
        return Err(GgufError::TooMany {
            what: "tensors",
            count: n_tensors,
            max: MAX_TENSORS,
        });
    }
    let n_kv = input.u64(Ctx::Header("the metadata count"))?;
    if n_kv > MAX_METADATA_KV {
        return Err(GgufError::TooMany {
            what: "metadata pairs",
            count: n_kv,
            max: MAX_METADATA_KV,
        });
    }

    let mut metadata = BTreeMap::new();
    for index in 0..n_kv {
        let key = input.strict_string(Ctx::KeyOf(index))?;
        let type_id = input.u32(Ctx::Value(&key))?;
        let ty = GgufValueType::from_u32(type_id).ok_or_else(|| GgufError::UnknownValueType {
            key: key.clone(),
            type_id,
        })?;
        let value = input.value(ty, &key, 0)?;
        if metadata.contains_key(&key) {
            return Err(GgufError::DuplicateKey(key));
        }
        metadata.insert(key, value);
    }
    let alignment = alignment_of(&metadata)?;

    let mut tensors = Vec::with_capacity(usize::try_from(n_tensors.min(4096)).unwrap_or(0));
    let mut names = HashSet::new();
    for index in 0..n_tensors {
        let info = input.tensor_info(index, alignment)?;
        if !names.insert(info.name.clone()) {
            return Err(GgufError::DuplicateTensor(info.name));
        }
        tensors.push(info);
    }

    let data_offset = align_up(input.pos, alignment).ok_or(GgufError::HeaderTooLarge {
        max: MAX_HEADER_BYTES,
    })?;
    Ok(GgufHeader {
        version,
        metadata,
        tensors,
        alignment,
        data_offset,
    })
}

/// Accepts v2 and v3; names v1 and byte-swapped (big-endian) versions.
fn check_version(version: u32) -> Result<(), GgufError> {
    match version {
        2 | 3 => Ok(()),
        1 => Err(GgufError::VersionOne),
        // A big-endian v1..v3 reads as 0x0N000000 (ggml's gguf.cpp uses the same test).
        v if v.trailing_zeros() >= 16 && (1..=3).contains(&v.swap_bytes()) => {
            Err(GgufError::BigEndian {
                version: v.swap_bytes(),
            })
        }
        v => Err(GgufError::UnsupportedVersion(v)),
    }
}

/// `general.alignment` (any integer type), or the default; must be a power of two.
fn alignment_of(metadata: &BTreeMap<String, GgufValue>) -> Result<u64, GgufError> {
    match metadata.get("general.alignment") {
        None => Ok(DEFAULT_ALIGNMENT),
        Some(v) => match v.as_u64() {
            Some(a) if a.is_power_of_two() => Ok(a),
            Some(a) => Err(GgufError::BadAlignment(a.to_string())),
            None => Err(GgufError::BadAlignment(format!(
                "a {} value",
                v.value_type().name()
            ))),
        },
    }
}

/// `pos` rounded up to a multiple of `alignment` (a power of two), `None` on overflow.
pub(super) fn align_up(pos: u64, alignment: u64) -> Option<u64> {
    let mask = alignment.checked_sub(1)?;
    pos.checked_add(mask).map(|p| p & !mask)
}

/// What was being read, for error messages; formatted only when an error happens.
#[derive(Clone, Copy)]
enum Ctx<'a> {
    Header(&'static str),
    KeyOf(u64),
    Value(&'a str),
    NameOf(u64),
    Tensor(&'a str),
}

impl fmt::Display for Ctx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ctx::Header(what) => write!(f, "{what} of the header"),
            Ctx::KeyOf(i) => write!(f, "the key of metadata pair {i}"),
            Ctx::Value(key) => write!(f, "the value of metadata key `{key}`"),
            Ctx::NameOf(i) => write!(f, "the name of tensor {i}"),
            Ctx::Tensor(name) => write!(f, "the info of tensor `{name}`"),
        }
    }
}

fn io_error(e: io::Error, ctx: Ctx<'_>) -> GgufError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        GgufError::Truncated {
            context: ctx.to_string(),
        }
    } else {
        GgufError::Io {
            context: ctx.to_string(),
            source: e,
        }
    }
}

/// The reader, with the position so far and the header-size budget.
struct Input<'r, R> {
    inner: &'r mut R,
    pos: u64,
}

impl<R: Read> Input<'_, R> {
    /// Refuses to go past [`MAX_HEADER_BYTES`].
    fn reserve(&self, n: u64) -> Result<(), GgufError> {
        match self.pos.checked_add(n) {
            Some(end) if end <= MAX_HEADER_BYTES => Ok(()),
            _ => Err(GgufError::HeaderTooLarge {
                max: MAX_HEADER_BYTES,
            }),
        }
    }

    fn fill(&mut self, buf: &mut [u8], ctx: Ctx<'_>) -> Result<(), GgufError> {
        let n = buf.len() as u64;
        self.reserve(n)?;
        self.inner.read_exact(buf).map_err(|e| io_error(e, ctx))?;
        self.pos += n;
        Ok(())
    }

    fn array<const N: usize>(&mut self, ctx: Ctx<'_>) -> Result<[u8; N], GgufError> {
        let mut buf = [0u8; N];
        self.fill(&mut buf, ctx)?;
        Ok(buf)
    }

    fn u32(&mut self, ctx: Ctx<'_>) -> Result<u32, GgufError> {
        self.array(ctx).map(u32::from_le_bytes)
    }

    fn u64(&mut self, ctx: Ctx<'_>) -> Result<u64, GgufError> {
        self.array(ctx).map(u64::from_le_bytes)
    }

    /// Reads and discards `n` bytes through a small stack buffer.
    fn skip(&mut self, mut n: u64, ctx: Ctx<'_>) -> Result<(), GgufError> {
        self.reserve(n)?;
        let mut scratch = [0u8; 4096];
        while n > 0 {
            let chunk = usize::try_from(n.min(scratch.len() as u64)).unwrap_or(scratch.len());
            self.fill(&mut scratch[..chunk], ctx)?;
            n -= chunk as u64;
        }
        Ok(())
    }

    /// A string's length, checked against [`MAX_STRING_LEN`] and the header budget.
    fn string_len(&mut self, ctx: Ctx<'_>) -> Result<u64, GgufError> {
        let len = self.u64(ctx)?;
        if len > MAX_STRING_LEN {
            return Err(GgufError::StringTooLong {
                context: ctx.to_string(),
                len,
                max: MAX_STRING_LEN,
            });
        }
        self.reserve(len)?;
        Ok(len)
    }

    /// A string's bytes, read incrementally: the buffer grows with the data actually present,
    /// never to the declared length up front.
    fn string_bytes(&mut self, ctx: Ctx<'_>) -> Result<Vec<u8>, GgufError> {
        let len = self.string_len(ctx)?;
        let mut buf = Vec::new();
        let got = (&mut *self.inner)
            .take(len)
            .read_to_end(&mut buf)
            .map_err(|e| io_error(e, ctx))?;
        self.pos += got as u64;
        if (got as u64) < len {
            return Err(GgufError::Truncated {
                context: ctx.to_string(),
            });
        }
        Ok(buf)
    }

    /// A key or tensor name: must be UTF-8.
    fn strict_string(&mut self, ctx: Ctx<'_>) -> Result<String, GgufError> {
        String::from_utf8(self.string_bytes(ctx)?).map_err(|_| GgufError::InvalidUtf8 {
            context: ctx.to_string(),
        })
    }

    /// A string value: invalid UTF-8 is replaced, not refused (token texts are not always UTF-8).
    fn lossy_string(&mut self, ctx: Ctx<'_>) -> Result<String, GgufError> {
        let bytes = self.string_bytes(ctx)?;
        Ok(String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }

    fn value(&mut self, ty: GgufValueType, key: &str, depth: u32) -> Result<GgufValue, GgufError> {
        let ctx = Ctx::Value(key);
        Ok(match ty {
            GgufValueType::U8 => GgufValue::U8(u8::from_le_bytes(self.array(ctx)?)),
            GgufValueType::I8 => GgufValue::I8(i8::from_le_bytes(self.array(ctx)?)),
            GgufValueType::U16 => GgufValue::U16(u16::from_le_bytes(self.array(ctx)?)),
            GgufValueType::I16 => GgufValue::I16(i16::from_le_bytes(self.array(ctx)?)),
            GgufValueType::U32 => GgufValue::U32(u32::from_le_bytes(self.array(ctx)?)),
            GgufValueType::I32 => GgufValue::I32(i32::from_le_bytes(self.array(ctx)?)),
            GgufValueType::F32 => GgufValue::F32(f32::from_le_bytes(self.array(ctx)?)),
            GgufValueType::Bool => GgufValue::Bool(self.array::<1>(ctx)?[0] != 0),
            GgufValueType::String => GgufValue::String(self.lossy_string(ctx)?),
            GgufValueType::U64 => GgufValue::U64(u64::from_le_bytes(self.array(ctx)?)),
            GgufValueType::I64 => GgufValue::I64(i64::from_le_bytes(self.array(ctx)?)),
            GgufValueType::F64 => GgufValue::F64(f64::from_le_bytes(self.array(ctx)?)),
            GgufValueType::Array => GgufValue::Array(self.array_value(key, depth)?),
        })
    }

    /// An array's element type and length, checked.
    fn array_head(&mut self, key: &str, depth: u32) -> Result<(GgufValueType, u64), GgufError> {
        if depth >= MAX_ARRAY_DEPTH {
            return Err(GgufError::ArrayTooDeep {
                key: key.to_owned(),
                max: MAX_ARRAY_DEPTH,
            });
        }
        let ctx = Ctx::Value(key);
        let type_id = self.u32(ctx)?;
        let element_type =
            GgufValueType::from_u32(type_id).ok_or_else(|| GgufError::UnknownValueType {
                key: key.to_owned(),
                type_id,
            })?;
        let len = self.u64(ctx)?;
        if len > MAX_ARRAY_LEN {
            return Err(GgufError::ArrayTooLong {
                key: key.to_owned(),
                len,
                max: MAX_ARRAY_LEN,
            });
        }
        Ok((element_type, len))
    }

    fn array_value(&mut self, key: &str, depth: u32) -> Result<GgufArray, GgufError> {
        let (element_type, len) = self.array_head(key, depth)?;
        if element_type == GgufValueType::Array || len > MAX_ARRAY_VALUES_KEPT {
            self.skip_elements(element_type, len, key, depth + 1)?;
            return Ok(GgufArray {
                element_type,
                len,
                values: None,
            });
        }
        // len <= MAX_ARRAY_VALUES_KEPT, so this capacity is bounded.
        let mut values = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        for _ in 0..len {
            values.push(self.value(element_type, key, depth + 1)?);
        }
        Ok(GgufArray {
            element_type,
            len,
            values: Some(values),
        })
    }

    /// Skips `len` elements of `element_type` without storing them.
    fn skip_elements(
        &mut self,
        element_type: GgufValueType,
        len: u64,
        key: &str,
        depth: u32,
    ) -> Result<(), GgufError> {
        let ctx = Ctx::Value(key);
        if let Some(size) = element_type.fixed_size() {
            // len <= MAX_ARRAY_LEN (2^28) and size <= 8: no overflow.
            return self.skip(len * size, ctx);
        }
        for _ in 0..len {
            if element_type == GgufValueType::String {
                let n = self.string_len(ctx)?;
                self.skip(n, ctx)?;
            } else {
                let (inner_type, inner_len) = self.array_head(key, depth)?;
                self.skip_elements(inner_type, inner_len, key, depth + 1)?;
            }
        }
        Ok(())
    }

    /// One tensor info, validated: at most 4 dimensions, a known type, whole blocks per row, a
    /// size that fits in 64 bits and an aligned offset.
    fn tensor_info(&mut self, index: u64, alignment: u64) -> Result<TensorInfo, GgufError> {
        let name = self.strict_string(Ctx::NameOf(index))?;
        let ctx = Ctx::Tensor(&name);
        let n_dims = self.u32(ctx)?;
        if n_dims > MAX_DIMS {
            return Err(GgufError::TooManyDims { name, n_dims });
        }
        let mut dims = Vec::with_capacity(MAX_DIMS as usize);
        for _ in 0..n_dims {
            dims.push(self.u64(ctx)?);
        }
        let type_id = self.u32(ctx)?;
        let Some(ggml_type) = GgmlType::from_u32(type_id) else {
            return Err(GgufError::UnknownGgmlType { name, type_id });
        };
        let offset = self.u64(ctx)?;
        let info = TensorInfo {
            name,
            dims,
            ggml_type,
            offset,
        };
        if info
            .dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .is_none()
        {
            return Err(GgufError::TensorTooLarge { name: info.name });
        }
        let n_bytes = info.n_bytes()?;
        if offset.checked_add(n_bytes).is_none() {
            return Err(GgufError::TensorTooLarge { name: info.name });
        }
        if !offset.is_multiple_of(alignment) {
            return Err(GgufError::MisalignedTensor {
                name: info.name,
                offset,
                alignment,
            });
        }
        Ok(info)
    }
}
