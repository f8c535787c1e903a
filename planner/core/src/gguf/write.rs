//! Writing a GGUF v3 header without weights, so tests and benchmarks can make model files.

use std::io::{self, Write};

use super::read::align_up;
use super::{DEFAULT_ALIGNMENT, GGUF_MAGIC, GgmlType, GgufValue, MAX_DIMS, TensorInfo};

/// Writes a syntactically valid GGUF v3 header (metadata + tensor infos) to `w`, and returns
/// the offset where data would start. Used by tests and benches to make GGUF files without real
/// weights.
///
/// Tensor offsets are laid out consecutively in the given order, each padded to the alignment:
/// `general.alignment` when `metadata` holds a power of two there, else 32. The header is
/// followed by zero padding up to the returned offset, so tensor data can be appended directly.
/// Every array in `metadata` must hold its values (`GgufArray::values` is `Some`), whatever its
/// length.
///
/// # Errors
///
/// `io::ErrorKind::InvalidInput` for a tensor with more than 4 dimensions, rows that are not
/// whole blocks, or an overflowing size, and for an array without values or whose values do not
/// match its element type or length; any error of `w`.
pub fn write_header<W: Write>(
    w: &mut W,
    metadata: &[(&str, GgufValue)],
    tensors: &[(&str, &[u64], GgmlType)],
) -> io::Result<u64> {
    let alignment = metadata
        .iter()
        .find(|(k, _)| *k == "general.alignment")
        .and_then(|(_, v)| v.as_u64())
        .filter(|a| a.is_power_of_two())
        .unwrap_or(DEFAULT_ALIGNMENT);

    let mut out = Output {
        inner: w,
        written: 0,
    };
    out.put(&GGUF_MAGIC.to_le_bytes())?;
    out.put(&3u32.to_le_bytes())?;
    out.put(&(tensors.len() as u64).to_le_bytes())?;
    out.put(&(metadata.len() as u64).to_le_bytes())?;
    for (key, value) in metadata {
        out.string(key)?;
        out.put(&value.value_type().id().to_le_bytes())?;
        out.value(key, value)?;
    }

    let mut offset = 0u64;
    for &(name, dims, ggml_type) in tensors {
        let n_dims = u32::try_from(dims.len())
            .ok()
            .filter(|&n| n <= MAX_DIMS)
            .ok_or_else(|| {
                invalid(format!(
                    "tensor `{name}` has {} dimensions: at most 4 are allowed",
                    dims.len()
                ))
            })?;
        let info = TensorInfo {
            name: name.to_owned(),
            dims: dims.to_vec(),
            ggml_type,
            offset,
        };
        let n_bytes = info.n_bytes().map_err(|e| invalid(e.to_string()))?;
        out.string(name)?;
        out.put(&n_dims.to_le_bytes())?;
        for d in dims {
            out.put(&d.to_le_bytes())?;
        }
        out.put(&ggml_type.id().to_le_bytes())?;
        out.put(&offset.to_le_bytes())?;
        offset = offset
            .checked_add(n_bytes)
            .and_then(|end| align_up(end, alignment))
            .ok_or_else(|| invalid(format!("tensor `{name}` ends beyond 2^64 bytes")))?;
    }

    let data_offset = align_up(out.written, alignment)
        .ok_or_else(|| invalid("the header ends beyond 2^64 bytes".to_owned()))?;
    let padding = [0u8; 64];
    while out.written < data_offset {
        let n = usize::try_from(data_offset - out.written)
            .map_or(padding.len(), |n| n.min(padding.len()));
        out.put(&padding[..n])?;
    }
    Ok(data_offset)
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// The writer and the bytes written so far.
struct Output<'w, W> {
    inner: &'w mut W,
    written: u64,
}

impl<W: Write> Output<'_, W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.inner.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn string(&mut self, s: &str) -> io::Result<()> {
        self.put(&(s.len() as u64).to_le_bytes())?;
        self.put(s.as_bytes())
    }

    /// A value's payload (its type id is written by the caller).
    fn value(&mut self, key: &str, value: &GgufValue) -> io::Result<()> {
        match value {
            GgufValue::U8(v) => self.put(&v.to_le_bytes()),
            GgufValue::I8(v) => self.put(&v.to_le_bytes()),
            GgufValue::U16(v) => self.put(&v.to_le_bytes()),
            GgufValue::I16(v) => self.put(&v.to_le_bytes()),
            GgufValue::U32(v) => self.put(&v.to_le_bytes()),
            GgufValue::I32(v) => self.put(&v.to_le_bytes()),
            GgufValue::F32(v) => self.put(&v.to_le_bytes()),
            GgufValue::Bool(v) => self.put(&[u8::from(*v)]),
            GgufValue::String(s) => self.string(s),
            GgufValue::U64(v) => self.put(&v.to_le_bytes()),
            GgufValue::I64(v) => self.put(&v.to_le_bytes()),
            GgufValue::F64(v) => self.put(&v.to_le_bytes()),
            GgufValue::Array(array) => {
                let values = array.values.as_ref().ok_or_else(|| {
                    invalid(format!(
                        "metadata key `{key}` is an array without values: cannot write it"
                    ))
                })?;
                if values.len() as u64 != array.len {
                    return Err(invalid(format!(
                        "metadata key `{key}` declares {} elements but holds {}",
                        array.len,
                        values.len()
                    )));
                }
                self.put(&array.element_type.id().to_le_bytes())?;
                self.put(&array.len.to_le_bytes())?;
                for v in values {
                    if v.value_type() != array.element_type {
                        return Err(invalid(format!(
                            "metadata key `{key}` is an array of {} holding a {}",
                            array.element_type.name(),
                            v.value_type().name()
                        )));
                    }
                    // A nested array writes its own element type, length and values.
                    self.value(key, v)?;
                }
                Ok(())
            }
        }
    }
}
