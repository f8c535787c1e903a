//! GGUF header reading: the metadata and tensor table of a llama.cpp model file, and the model
//! facts the memory estimator takes from them.
//!
//! This module owns the GGUF wire format (versions 2 and 3, little-endian, as in ggml's
//! docs/gguf.md and ggml/src/gguf.cpp), the ggml tensor-type table ([`GgmlType`]), the
//! `llama_ftype` names ([`llama_ftype_name`]) and the reduction of a header to
//! [`GgufModelFacts`]. It reads from any [`std::io::Read`] and never touches the disk itself: the
//! caller opens the file. It reads only the header, never tensor data.
//!
//! Every malformed input is an `Err(GgufError)`, never a panic, and nothing is allocated from an
//! untrusted length without a bound: strings are capped at [`MAX_STRING_LEN`] and read
//! incrementally, counts are capped ([`MAX_TENSORS`], [`MAX_METADATA_KV`], [`MAX_ARRAY_LEN`]),
//! arrays longer than [`MAX_ARRAY_VALUES_KEPT`] are skipped rather than stored, and the whole
//! header is capped at [`MAX_HEADER_BYTES`].
//!
//! [`write_header`] writes a syntactically valid v3 header without weights, for tests and
//! benchmarks.

mod facts;
mod ggml_type;
mod read;
mod write;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::Serialize;
use thiserror::Error;

pub use facts::{GgufModelFacts, MAX_BLOCK_COUNT, llama_ftype_name};
pub use ggml_type::GgmlType;
pub use read::read_header;
pub use write::write_header;

/// `"GGUF"` read as a little-endian `u32`.
pub const GGUF_MAGIC: u32 = 0x4655_4747;
/// Tensor-data alignment when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Longest string (key, value, tensor name) the reader accepts: 16 MiB.
pub const MAX_STRING_LEN: u64 = 16 << 20;
/// Most tensors a header may declare.
pub const MAX_TENSORS: u64 = 1 << 20;
/// Most metadata key/value pairs a header may declare.
pub const MAX_METADATA_KV: u64 = 1 << 20;
/// Most elements one metadata array may declare (the largest real vocabularies are ~10⁶).
pub const MAX_ARRAY_LEN: u64 = 1 << 28;
/// Arrays up to this length keep their values; longer ones keep only type and length.
pub const MAX_ARRAY_VALUES_KEPT: u64 = 1024;
/// Deepest nesting of arrays inside arrays the reader follows.
pub const MAX_ARRAY_DEPTH: u32 = 8;
/// Most dimensions a tensor may have (`GGML_MAX_DIMS`).
pub const MAX_DIMS: u32 = 4;
/// Largest header (metadata and tensor infos, before the data) the reader accepts: 1 GiB.
pub const MAX_HEADER_BYTES: u64 = 1 << 30;

/// Why a GGUF header could not be read or understood.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum GgufError {
    /// The first four bytes are not `GGUF`.
    #[error("not a gguf file: the magic is {found:#010x}, expected 0x46554747 (\"GGUF\")")]
    BadMagic { found: u32 },
    /// A GGUF v1 file (32-bit counts), which llama.cpp no longer reads either.
    #[error(
        "gguf version 1 is no longer supported: convert the model again with a current llama.cpp"
    )]
    VersionOne,
    /// A version this reader does not know.
    #[error("gguf version {0} is not supported: expected 2 or 3")]
    UnsupportedVersion(u32),
    /// A big-endian file (the version reads byte-swapped).
    #[error(
        "the gguf file is big-endian (version {version} byte-swapped): only little-endian files are supported"
    )]
    BigEndian { version: u32 },
    /// The input ended inside the header.
    #[error("the file ends early, while reading {context}")]
    Truncated { context: String },
    /// The reader failed for a reason other than end of input.
    #[error("cannot read {context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The header is longer than [`MAX_HEADER_BYTES`].
    #[error("the gguf header is larger than {max} bytes")]
    HeaderTooLarge { max: u64 },
    /// A count in the header is beyond its limit.
    #[error("the header declares {count} {what}: at most {max} are allowed")]
    TooMany {
        what: &'static str,
        count: u64,
        max: u64,
    },
    /// A string is longer than [`MAX_STRING_LEN`].
    #[error("{context} is {len} bytes long: at most {max} are allowed")]
    StringTooLong { context: String, len: u64, max: u64 },
    /// A key or tensor name is not UTF-8.
    #[error("{context} is not valid utf-8")]
    InvalidUtf8 { context: String },
    /// A metadata value type id is not one of the 13 GGUF types.
    #[error("metadata key `{key}` has unknown value type {type_id}")]
    UnknownValueType { key: String, type_id: u32 },
    /// An array declares more than [`MAX_ARRAY_LEN`] elements.
    #[error("metadata key `{key}` is an array of {len} elements: at most {max} are allowed")]
    ArrayTooLong { key: String, len: u64, max: u64 },
    /// Arrays nest deeper than [`MAX_ARRAY_DEPTH`].
    #[error("metadata key `{key}` nests arrays more than {max} deep")]
    ArrayTooDeep { key: String, max: u32 },
    /// The same metadata key appears twice.
    #[error("metadata key `{0}` appears twice")]
    DuplicateKey(String),
    /// The same tensor name appears twice.
    #[error("tensor `{0}` appears twice")]
    DuplicateTensor(String),
    /// A tensor has more than [`MAX_DIMS`] dimensions.
    #[error("tensor `{name}` has {n_dims} dimensions: at most {max} are allowed", max = MAX_DIMS)]
    TooManyDims { name: String, n_dims: u32 },
    /// A tensor's ggml type id is unknown or was removed from ggml.
    #[error("tensor `{name}` has unknown ggml type {type_id}")]
    UnknownGgmlType { name: String, type_id: u32 },
    /// A tensor's rows do not divide into whole blocks of its type.
    #[error(
        "tensor `{name}` has rows of {row} elements: not a multiple of the {ggml_type} block size {block}"
    )]
    PartialBlock {
        name: String,
        ggml_type: GgmlType,
        row: u64,
        block: u64,
    },
    /// A tensor's element or byte count does not fit in 64 bits.
    #[error("tensor `{name}` is too large: its size does not fit in 64 bits")]
    TensorTooLarge { name: String },
    /// A tensor's data offset is not a multiple of the alignment.
    #[error(
        "tensor `{name}` has data offset {offset}: not a multiple of the alignment {alignment}"
    )]
    MisalignedTensor {
        name: String,
        offset: u64,
        alignment: u64,
    },
    /// `general.alignment` is zero, not a power of two, or not an integer.
    #[error("`general.alignment` is {0}: expected a power of two")]
    BadAlignment(String),
    /// A key the model facts need is absent.
    #[error("metadata key `{0}` is missing")]
    MissingKey(String),
    /// A key has a value of the wrong type or range.
    #[error("metadata key `{key}` is {found}: expected {expected}")]
    WrongType {
        key: String,
        expected: &'static str,
        found: String,
    },
}

/// The type of a metadata value, numbered as in `enum gguf_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum GgufValueType {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
}

impl GgufValueType {
    /// The type with GGUF id `v`, or `None` when unknown.
    #[must_use]
    pub fn from_u32(v: u32) -> Option<Self> {
        use GgufValueType::{Array, Bool, F32, F64, I8, I16, I32, I64, String, U8, U16, U32, U64};
        Some(match v {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => String,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return None,
        })
    }

    /// The GGUF id written before a value.
    #[must_use]
    pub fn id(self) -> u32 {
        self as u32
    }

    /// Bytes of one value of this type, or `None` for strings and arrays.
    #[must_use]
    pub fn fixed_size(self) -> Option<u64> {
        use GgufValueType::{Array, Bool, F32, F64, I8, I16, I32, I64, String, U8, U16, U32, U64};
        match self {
            U8 | I8 | Bool => Some(1),
            U16 | I16 => Some(2),
            U32 | I32 | F32 => Some(4),
            U64 | I64 | F64 => Some(8),
            String | Array => None,
        }
    }

    /// Lowercase name for messages: `u32`, `string`, `array`…
    #[must_use]
    pub fn name(self) -> &'static str {
        use GgufValueType::{Array, Bool, F32, F64, I8, I16, I32, I64, String, U8, U16, U32, U64};
        match self {
            U8 => "u8",
            I8 => "i8",
            U16 => "u16",
            I16 => "i16",
            U32 => "u32",
            I32 => "i32",
            F32 => "f32",
            Bool => "bool",
            String => "string",
            Array => "array",
            U64 => "u64",
            I64 => "i64",
            F64 => "f64",
        }
    }
}

/// One metadata value.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum GgufValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    /// Text. Invalid UTF-8 in a value is replaced by U+FFFD (keys and tensor names must be valid).
    String(String),
    U64(u64),
    I64(i64),
    F64(f64),
    Array(GgufArray),
}

impl GgufValue {
    /// This value's type.
    #[must_use]
    pub fn value_type(&self) -> GgufValueType {
        match self {
            GgufValue::U8(_) => GgufValueType::U8,
            GgufValue::I8(_) => GgufValueType::I8,
            GgufValue::U16(_) => GgufValueType::U16,
            GgufValue::I16(_) => GgufValueType::I16,
            GgufValue::U32(_) => GgufValueType::U32,
            GgufValue::I32(_) => GgufValueType::I32,
            GgufValue::F32(_) => GgufValueType::F32,
            GgufValue::Bool(_) => GgufValueType::Bool,
            GgufValue::String(_) => GgufValueType::String,
            GgufValue::U64(_) => GgufValueType::U64,
            GgufValue::I64(_) => GgufValueType::I64,
            GgufValue::F64(_) => GgufValueType::F64,
            GgufValue::Array(_) => GgufValueType::Array,
        }
    }

    /// The value as a `u64` when it is a non-negative integer of any width.
    #[must_use]
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            GgufValue::U8(v) => Some(u64::from(v)),
            GgufValue::U16(v) => Some(u64::from(v)),
            GgufValue::U32(v) => Some(u64::from(v)),
            GgufValue::U64(v) => Some(v),
            GgufValue::I8(v) => u64::try_from(v).ok(),
            GgufValue::I16(v) => u64::try_from(v).ok(),
            GgufValue::I32(v) => u64::try_from(v).ok(),
            GgufValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as an `f64` when it is a number (float or integer; 64-bit integers above 2^53
    /// round to the nearest `f64`).
    #[must_use]
    #[allow(
        clippy::cast_precision_loss,
        reason = "u64 and i64 have no lossless f64 form"
    )]
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            GgufValue::F32(v) => Some(f64::from(v)),
            GgufValue::F64(v) => Some(v),
            GgufValue::U8(v) => Some(f64::from(v)),
            GgufValue::U16(v) => Some(f64::from(v)),
            GgufValue::U32(v) => Some(f64::from(v)),
            GgufValue::U64(v) => Some(v as f64),
            GgufValue::I8(v) => Some(f64::from(v)),
            GgufValue::I16(v) => Some(f64::from(v)),
            GgufValue::I32(v) => Some(f64::from(v)),
            GgufValue::I64(v) => Some(v as f64),
            _ => None,
        }
    }

    /// The value as text when it is a string.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            GgufValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value as an array.
    #[must_use]
    pub fn as_array(&self) -> Option<&GgufArray> {
        match self {
            GgufValue::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// A metadata array. Small arrays keep their values; large ones (vocabularies, merges) keep
/// only their element type and length, their bytes are skipped.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GgufArray {
    /// Type of every element.
    pub element_type: GgufValueType,
    /// Number of elements, as declared in the file.
    pub len: u64,
    /// The elements, or `None` when `len > MAX_ARRAY_VALUES_KEPT` or the elements are arrays.
    pub values: Option<Vec<GgufValue>>,
}

impl GgufArray {
    /// An array holding `values`, all of type `element_type` (for [`write_header`]).
    #[must_use]
    pub fn new(element_type: GgufValueType, values: Vec<GgufValue>) -> Self {
        GgufArray {
            element_type,
            len: values.len() as u64,
            values: Some(values),
        }
    }
}

/// One entry of the tensor table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TensorInfo {
    /// Tensor name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Dimensions, innermost (row length) first, as ggml's `ne`.
    pub dims: Vec<u64>,
    /// Storage type.
    pub ggml_type: GgmlType,
    /// Offset of the tensor's data from [`GgufHeader::data_offset`].
    pub offset: u64,
}

impl TensorInfo {
    /// Number of elements (product of the dimensions; 1 for a scalar), saturating at `u64::MAX`.
    #[must_use]
    pub fn n_elements(&self) -> u64 {
        self.dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .unwrap_or(u64::MAX)
    }

    /// Exact bytes of the tensor's data, as `ggml_nbytes`: whole blocks per row times rows.
    ///
    /// # Errors
    ///
    /// [`GgufError::PartialBlock`] when the row length is not a multiple of the type's block
    /// size, [`GgufError::TensorTooLarge`] when the size does not fit in 64 bits.
    pub fn n_bytes(&self) -> Result<u64, GgufError> {
        let ty = self.ggml_type;
        let row = self.dims.first().copied().unwrap_or(1);
        let block = ty.block_size();
        if !row.is_multiple_of(block) {
            return Err(GgufError::PartialBlock {
                name: self.name.clone(),
                ggml_type: ty,
                row,
                block,
            });
        }
        let too_large = || GgufError::TensorTooLarge {
            name: self.name.clone(),
        };
        let row_bytes = (row / block)
            .checked_mul(ty.type_size())
            .ok_or_else(too_large)?;
        self.dims
            .iter()
            .skip(1)
            .try_fold(row_bytes, |acc, &d| acc.checked_mul(d))
            .ok_or_else(too_large)
    }
}

/// A parsed GGUF header: metadata, tensor table and where the data starts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GgufHeader {
    /// Format version: 2 or 3.
    pub version: u32,
    /// All metadata, by key.
    pub metadata: BTreeMap<String, GgufValue>,
    /// The tensor table, in file order.
    pub tensors: Vec<TensorInfo>,
    /// `general.alignment`, or [`DEFAULT_ALIGNMENT`].
    pub alignment: u64,
    /// Byte offset of the tensor data: the end of the header, padded to `alignment`.
    pub data_offset: u64,
}

impl GgufHeader {
    /// `general.architecture`, e.g. `llama`.
    #[must_use]
    pub fn architecture(&self) -> Option<&str> {
        self.get_str("general.architecture")
    }

    /// The value at `key` when it is a non-negative integer of any width.
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.metadata.get(key).and_then(GgufValue::as_u64)
    }

    /// The value at `key` when it is a number.
    pub fn get_f64(&self, key: &str) -> Option<f64> {
        self.metadata.get(key).and_then(GgufValue::as_f64)
    }

    /// The value at `key` when it is a string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(GgufValue::as_str)
    }

    /// The architecture-scoped integer `{arch}.{suffix}`, e.g. `arch_u64("block_count")`.
    #[must_use]
    pub fn arch_u64(&self, suffix: &str) -> Option<u64> {
        let arch = self.architecture()?;
        self.get_u64(&format!("{arch}.{suffix}"))
    }

    /// Sum of [`TensorInfo::n_bytes`] over all tensors (without the padding between them).
    ///
    /// # Errors
    ///
    /// The first tensor's [`TensorInfo::n_bytes`] error, or [`GgufError::TensorTooLarge`] when the
    /// sum overflows. Never for a header from [`read_header`], which checks every tensor.
    pub fn tensor_data_bytes(&self) -> Result<u64, GgufError> {
        self.tensors.iter().try_fold(0u64, |acc, t| {
            acc.checked_add(t.n_bytes()?)
                .ok_or_else(|| GgufError::TensorTooLarge {
                    name: t.name.clone(),
                })
        })
    }

    /// End of the last tensor's data, relative to `data_offset` (`max(offset + n_bytes)`):
    /// `data_offset + tensor_data_end()` is the size of a well-formed single-file GGUF.
    ///
    /// # Errors
    ///
    /// As [`GgufHeader::tensor_data_bytes`].
    pub fn tensor_data_end(&self) -> Result<u64, GgufError> {
        self.tensors.iter().try_fold(0u64, |acc, t| {
            let end =
                t.offset
                    .checked_add(t.n_bytes()?)
                    .ok_or_else(|| GgufError::TensorTooLarge {
                        name: t.name.clone(),
                    })?;
            Ok(acc.max(end))
        })
    }

    /// `general.file_type`, the `llama_ftype` the file was quantized to.
    #[must_use]
    pub fn file_type(&self) -> Option<u32> {
        self.get_u64("general.file_type")
            .and_then(|v| u32::try_from(v).ok())
    }

    /// The tensor named `name`.
    #[must_use]
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }
}
