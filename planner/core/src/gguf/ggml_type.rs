//! The ggml tensor types a GGUF file can name, with their exact block geometry.
//!
//! Ids come from `enum ggml_type` in ggml/include/ggml.h; block sizes and bytes per block come
//! from the `type_traits` table in ggml/src/ggml.c and the `block_*` structs (with their
//! `static_assert`ed sizes) in ggml/src/ggml-common.h, ggml-org/llama.cpp. Ids 4, 5, 31–33 and
//! 36–38 were removed from ggml and are rejected.

use serde::Serialize;

/// A ggml tensor type, numbered as in `enum ggml_type`.
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum GgmlType {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    IQ2_XXS = 16,
    IQ2_XS = 17,
    IQ3_XXS = 18,
    IQ1_S = 19,
    IQ4_NL = 20,
    IQ3_S = 21,
    IQ2_S = 22,
    IQ4_XS = 23,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    IQ1_M = 29,
    BF16 = 30,
    TQ1_0 = 34,
    TQ2_0 = 35,
    MXFP4 = 39,
    /// NVIDIA FP4: 4 sub-blocks of 16 with E4M3 scales (added to ggml in 2026).
    NVFP4 = 40,
    /// 1-bit quantization, blocks of 128 (added to ggml in 2026).
    Q1_0 = 41,
    /// 2-bit quantization, blocks of 64 (added to ggml in 2026).
    Q2_0 = 42,
}

/// Every type, in id order (for tests and lookups).
pub(crate) const ALL_GGML_TYPES: [GgmlType; 35] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q8_1,
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
    GgmlType::Q8_K,
    GgmlType::IQ2_XXS,
    GgmlType::IQ2_XS,
    GgmlType::IQ3_XXS,
    GgmlType::IQ1_S,
    GgmlType::IQ4_NL,
    GgmlType::IQ3_S,
    GgmlType::IQ2_S,
    GgmlType::IQ4_XS,
    GgmlType::I8,
    GgmlType::I16,
    GgmlType::I32,
    GgmlType::I64,
    GgmlType::F64,
    GgmlType::IQ1_M,
    GgmlType::BF16,
    GgmlType::TQ1_0,
    GgmlType::TQ2_0,
    GgmlType::MXFP4,
    GgmlType::NVFP4,
    GgmlType::Q1_0,
    GgmlType::Q2_0,
];

/// `QK_K`, the super-block size of the k-quants and i-quants.
const QK_K: u64 = 256;

impl GgmlType {
    /// The type with ggml id `v`, or `None` for unknown and removed ids.
    #[must_use]
    pub fn from_u32(v: u32) -> Option<Self> {
        ALL_GGML_TYPES.iter().copied().find(|t| t.id() == v)
    }

    /// The ggml id written in GGUF tensor infos.
    #[must_use]
    pub fn id(self) -> u32 {
        self as u32
    }

    /// Elements per block (`blck_size` in ggml's type traits).
    #[must_use]
    pub fn block_size(self) -> u64 {
        use GgmlType::{
            BF16, F16, F32, F64, I8, I16, I32, I64, IQ1_M, IQ1_S, IQ2_S, IQ2_XS, IQ2_XXS, IQ3_S,
            IQ3_XXS, IQ4_NL, IQ4_XS, MXFP4, NVFP4, Q1_0, Q2_0, Q2_K, Q3_K, Q4_0, Q4_1, Q4_K, Q5_0,
            Q5_1, Q5_K, Q6_K, Q8_0, Q8_1, Q8_K, TQ1_0, TQ2_0,
        };
        match self {
            F32 | F16 | BF16 | F64 | I8 | I16 | I32 | I64 => 1,
            Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | Q8_1 | IQ4_NL | MXFP4 => 32,
            NVFP4 | Q2_0 => 64,
            Q1_0 => 128,
            Q2_K | Q3_K | Q4_K | Q5_K | Q6_K | Q8_K | IQ2_XXS | IQ2_XS | IQ3_XXS | IQ1_S
            | IQ3_S | IQ2_S | IQ4_XS | IQ1_M | TQ1_0 | TQ2_0 => QK_K,
        }
    }

    /// Bytes per block (`type_size` in ggml's type traits, i.e. `sizeof(block_*)`).
    #[must_use]
    #[allow(
        clippy::match_same_arms,
        reason = "each arm transcribes its own block struct"
    )]
    pub fn type_size(self) -> u64 {
        use GgmlType::{
            BF16, F16, F32, F64, I8, I16, I32, I64, IQ1_M, IQ1_S, IQ2_S, IQ2_XS, IQ2_XXS, IQ3_S,
            IQ3_XXS, IQ4_NL, IQ4_XS, MXFP4, NVFP4, Q1_0, Q2_0, Q2_K, Q3_K, Q4_0, Q4_1, Q4_K, Q5_0,
            Q5_1, Q5_K, Q6_K, Q8_0, Q8_1, Q8_K, TQ1_0, TQ2_0,
        };
        // ggml_half = 2 bytes. Each line is the block struct's static_assert in ggml-common.h.
        match self {
            I8 => 1,
            F16 | BF16 | I16 => 2,
            F32 | I32 => 4,
            F64 | I64 => 8,
            Q4_0 | IQ4_NL => 2 + 32 / 2,                         // 18
            Q4_1 => 2 * 2 + 32 / 2,                              // 20
            Q5_0 => 2 + 4 + 32 / 2,                              // 22
            Q5_1 => 2 * 2 + 4 + 32 / 2,                          // 24
            Q8_0 => 2 + 32,                                      // 34
            Q8_1 => 2 * 2 + 32,                                  // 36
            MXFP4 => 1 + 32 / 2,                                 // 17
            NVFP4 => 64 / 16 + 64 / 2,                           // 36
            Q1_0 => 2 + 128 / 8,                                 // 18
            Q2_0 => 2 + 64 / 4,                                  // 18
            Q2_K => 2 * 2 + QK_K / 16 + QK_K / 4,                // 84
            Q3_K => 2 + QK_K / 4 + QK_K / 8 + 12,                // 110
            Q4_K => 2 * 2 + 12 + QK_K / 2,                       // 144
            Q5_K => 2 * 2 + 12 + QK_K / 2 + QK_K / 8,            // 176
            Q6_K => 2 + QK_K / 16 + 3 * QK_K / 4,                // 210
            Q8_K => 4 + QK_K + QK_K / 16 * 2,                    // 292
            IQ2_XXS => 2 + QK_K / 8 * 2,                         // 66
            IQ2_XS => 2 + QK_K / 8 * 2 + QK_K / 32,              // 74
            IQ2_S => 2 + QK_K / 4 + QK_K / 16,                   // 82
            IQ3_XXS => 2 + 3 * (QK_K / 8),                       // 98
            IQ3_S => 2 + 13 * (QK_K / 32) + QK_K / 64,           // 110
            IQ1_S => 2 + QK_K / 8 + QK_K / 16,                   // 50
            IQ1_M => QK_K / 8 + QK_K / 16 + QK_K / 32,           // 56
            IQ4_XS => 2 + 2 + QK_K / 64 + QK_K / 2,              // 136
            TQ1_0 => 2 + QK_K / 64 + (QK_K - 4 * QK_K / 64) / 5, // 54
            TQ2_0 => 2 + QK_K / 4,                               // 66
        }
    }

    /// The type's name as gguf-py spells it (`GGMLQuantizationType`), e.g. `Q4_K`, `BF16`.
    #[must_use]
    pub fn name(self) -> &'static str {
        use GgmlType::{
            BF16, F16, F32, F64, I8, I16, I32, I64, IQ1_M, IQ1_S, IQ2_S, IQ2_XS, IQ2_XXS, IQ3_S,
            IQ3_XXS, IQ4_NL, IQ4_XS, MXFP4, NVFP4, Q1_0, Q2_0, Q2_K, Q3_K, Q4_0, Q4_1, Q4_K, Q5_0,
            Q5_1, Q5_K, Q6_K, Q8_0, Q8_1, Q8_K, TQ1_0, TQ2_0,
        };
        match self {
            F32 => "F32",
            F16 => "F16",
            Q4_0 => "Q4_0",
            Q4_1 => "Q4_1",
            Q5_0 => "Q5_0",
            Q5_1 => "Q5_1",
            Q8_0 => "Q8_0",
            Q8_1 => "Q8_1",
            Q2_K => "Q2_K",
            Q3_K => "Q3_K",
            Q4_K => "Q4_K",
            Q5_K => "Q5_K",
            Q6_K => "Q6_K",
            Q8_K => "Q8_K",
            IQ2_XXS => "IQ2_XXS",
            IQ2_XS => "IQ2_XS",
            IQ3_XXS => "IQ3_XXS",
            IQ1_S => "IQ1_S",
            IQ4_NL => "IQ4_NL",
            IQ3_S => "IQ3_S",
            IQ2_S => "IQ2_S",
            IQ4_XS => "IQ4_XS",
            I8 => "I8",
            I16 => "I16",
            I32 => "I32",
            I64 => "I64",
            F64 => "F64",
            IQ1_M => "IQ1_M",
            BF16 => "BF16",
            TQ1_0 => "TQ1_0",
            TQ2_0 => "TQ2_0",
            MXFP4 => "MXFP4",
            NVFP4 => "NVFP4",
            Q1_0 => "Q1_0",
            Q2_0 => "Q2_0",
        }
    }
}

impl std::fmt::Display for GgmlType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
