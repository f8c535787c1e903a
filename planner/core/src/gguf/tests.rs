//! Tests of the GGUF reader, writer, type table and model facts.

use super::ggml_type::ALL_GGML_TYPES;
use super::*;

// ---------------------------------------------------------------------------------------------
// Helpers

fn read_ok(bytes: &[u8]) -> GgufHeader {
    match read_header(&mut &bytes[..]) {
        Ok(h) => h,
        Err(e) => panic!("expected a header, got: {e}"),
    }
}

fn read_err(bytes: &[u8]) -> GgufError {
    match read_header(&mut &bytes[..]) {
        Ok(h) => panic!(
            "expected an error, got a header with {} tensors",
            h.tensors.len()
        ),
        Err(e) => e,
    }
}

fn facts_ok(h: &GgufHeader) -> GgufModelFacts {
    match h.model_facts() {
        Ok(f) => f,
        Err(e) => panic!("expected model facts, got: {e}"),
    }
}

/// `write_header` into a buffer; also checks the buffer ends exactly at the returned offset.
fn write(metadata: &[(&str, GgufValue)], tensors: &[(String, Vec<u64>, GgmlType)]) -> Vec<u8> {
    let tensors: Vec<(&str, &[u64], GgmlType)> = tensors
        .iter()
        .map(|(n, d, t)| (n.as_str(), d.as_slice(), *t))
        .collect();
    let mut buf = Vec::new();
    match write_header(&mut buf, metadata, &tensors) {
        Ok(offset) => assert_eq!(offset, buf.len() as u64),
        Err(e) => panic!("write_header failed: {e}"),
    }
    buf
}

fn strings(prefix: &str, n: usize) -> GgufValue {
    let values = (0..n)
        .map(|i| GgufValue::String(format!("{prefix}{i}")))
        .collect();
    GgufValue::Array(GgufArray::new(GgufValueType::String, values))
}

fn u32s(values: &[u32]) -> GgufValue {
    GgufValue::Array(GgufArray::new(
        GgufValueType::U32,
        values.iter().map(|&v| GgufValue::U32(v)).collect(),
    ))
}

fn s(v: &str) -> GgufValue {
    GgufValue::String(v.to_owned())
}

/// Exact bytes of a tensor computed independently of `n_bytes`: elements / block · type size.
fn bytes_of(dims: &[u64], ty: GgmlType) -> u64 {
    dims.iter().product::<u64>() / ty.block_size() * ty.type_size()
}

/// Minimal metadata for `arch` (block count, context, width, heads, a 4-token vocabulary).
fn minimal(arch: &str, layers: u32) -> Vec<(String, GgufValue)> {
    vec![
        ("general.architecture".to_owned(), s(arch)),
        (format!("{arch}.block_count"), GgufValue::U32(layers)),
        (format!("{arch}.context_length"), GgufValue::U32(8192)),
        (format!("{arch}.embedding_length"), GgufValue::U32(1152)),
        (format!("{arch}.attention.head_count"), GgufValue::U32(4)),
        (format!("{arch}.attention.head_count_kv"), GgufValue::U32(1)),
        ("tokenizer.ggml.tokens".to_owned(), strings("t", 4)),
    ]
}

fn header_of(metadata: &[(String, GgufValue)]) -> GgufHeader {
    let borrowed: Vec<(&str, GgufValue)> = metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    read_ok(&write(&borrowed, &[]))
}

/// A hand-built byte stream, for headers `write_header` refuses to make.
#[derive(Default)]
struct Raw(Vec<u8>);

impl Raw {
    fn gguf(version: u32, n_tensors: u64, n_kv: u64) -> Self {
        Raw::default()
            .u32(GGUF_MAGIC)
            .u32(version)
            .u64(n_tensors)
            .u64(n_kv)
    }
    fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn str(self, v: &str) -> Self {
        let mut r = self.u64(v.len() as u64);
        r.0.extend_from_slice(v.as_bytes());
        r
    }
    fn tensor(self, name: &str, dims: &[u64], type_id: u32, offset: u64) -> Self {
        let n_dims = u32::try_from(dims.len()).unwrap_or(u32::MAX);
        let mut r = self.str(name).u32(n_dims);
        for &d in dims {
            r = r.u64(d);
        }
        r.u32(type_id).u64(offset)
    }
}

// ---------------------------------------------------------------------------------------------
// A llama-like model

const HIDDEN: u64 = 256;
const FFN: u64 = 512;
const KV_DIM: u64 = 64; // 2 kv heads × 32
const VOCAB: u64 = 50_000;

fn llama_tensors() -> Vec<(String, Vec<u64>, GgmlType)> {
    let mut t = vec![(
        "token_embd.weight".to_owned(),
        vec![HIDDEN, VOCAB],
        GgmlType::Q6_K,
    )];
    for il in 0..2 {
        let blk = |n: &str| format!("blk.{il}.{n}.weight");
        t.extend([
            (blk("attn_norm"), vec![HIDDEN], GgmlType::F32),
            (blk("attn_q"), vec![HIDDEN, HIDDEN], GgmlType::Q4_K),
            (blk("attn_k"), vec![HIDDEN, KV_DIM], GgmlType::Q4_K),
            (blk("attn_v"), vec![HIDDEN, KV_DIM], GgmlType::Q6_K),
            (blk("attn_output"), vec![HIDDEN, HIDDEN], GgmlType::Q4_K),
            (blk("ffn_norm"), vec![HIDDEN], GgmlType::F32),
            (blk("ffn_gate"), vec![HIDDEN, FFN], GgmlType::Q4_K),
            (blk("ffn_up"), vec![HIDDEN, FFN], GgmlType::Q4_K),
            (blk("ffn_down"), vec![FFN, HIDDEN], GgmlType::Q6_K),
        ]);
    }
    t.push(("output_norm.weight".to_owned(), vec![HIDDEN], GgmlType::F32));
    t.push((
        "output.weight".to_owned(),
        vec![HIDDEN, VOCAB],
        GgmlType::Q6_K,
    ));
    t
}

fn llama_metadata(n_tokens: usize) -> Vec<(&'static str, GgufValue)> {
    vec![
        ("general.architecture", s("llama")),
        ("general.name", s("tiny llama")),
        ("general.file_type", GgufValue::U32(15)),
        ("llama.block_count", GgufValue::U32(2)),
        ("llama.context_length", GgufValue::U32(4096)),
        ("llama.embedding_length", GgufValue::U32(256)),
        ("llama.feed_forward_length", GgufValue::U32(512)),
        ("llama.attention.head_count", GgufValue::U32(8)),
        ("llama.attention.head_count_kv", GgufValue::U32(2)),
        ("llama.rope.freq_base", GgufValue::F32(500_000.0)),
        (
            "llama.attention.layer_norm_rms_epsilon",
            GgufValue::F32(1e-5),
        ),
        ("tokenizer.ggml.model", s("gpt2")),
        ("tokenizer.ggml.tokens", strings("tok", n_tokens)),
        ("tokenizer.ggml.bos_token_id", GgufValue::U32(1)),
        ("tokenizer.ggml.add_bos_token", GgufValue::Bool(true)),
    ]
}

#[test]
fn round_trip_of_a_llama_like_model() {
    let tensors = llama_tensors();
    let bytes = write(&llama_metadata(50_000), &tensors);
    let h = read_ok(&bytes);

    assert_eq!(h.version, 3);
    assert_eq!(h.alignment, 32);
    assert_eq!(h.data_offset, bytes.len() as u64);
    assert_eq!(h.data_offset % 32, 0);
    assert_eq!(h.tensors.len(), tensors.len());
    assert_eq!(h.architecture(), Some("llama"));
    assert_eq!(h.get_str("general.name"), Some("tiny llama"));
    assert_eq!(h.arch_u64("block_count"), Some(2));
    assert_eq!(h.get_f64("llama.rope.freq_base"), Some(500_000.0));
    assert_eq!(h.get_u64("llama.rope.freq_base"), None);
    assert_eq!(
        h.metadata.get("tokenizer.ggml.add_bos_token"),
        Some(&GgufValue::Bool(true))
    );
    assert_eq!(h.file_type(), Some(15));

    // Tensors are in file order, offsets consecutive and aligned.
    let mut expected_offset = 0;
    for (info, (name, dims, ty)) in h.tensors.iter().zip(&tensors) {
        assert_eq!((&info.name, &info.dims, info.ggml_type), (name, dims, *ty));
        assert_eq!(info.offset, expected_offset, "{name}");
        expected_offset = (info.offset + bytes_of(dims, *ty)).div_ceil(32) * 32;
    }

    let expected_total: u64 = tensors.iter().map(|(_, d, t)| bytes_of(d, *t)).sum();
    let embd = bytes_of(&[HIDDEN, VOCAB], GgmlType::Q6_K);
    let layer: u64 = tensors
        .iter()
        .filter(|(n, _, _)| n.starts_with("blk.0."))
        .map(|(_, d, t)| bytes_of(d, *t))
        .sum();
    assert_eq!(h.tensor_data_bytes().ok(), Some(expected_total));

    let f = facts_ok(&h);
    assert_eq!(f.architecture, "llama");
    assert_eq!(f.block_count, 2);
    assert_eq!(f.context_length, 4096);
    assert_eq!(f.embedding_length, HIDDEN);
    assert_eq!(f.feed_forward_length, Some(FFN));
    assert_eq!((f.head_count, f.head_count_kv), (8, 2));
    assert_eq!(f.head_count_kv_per_layer, None);
    assert_eq!((f.key_length, f.value_length), (32, 32));
    assert_eq!(f.vocab_size, VOCAB);
    assert_eq!(f.tensor_data_bytes, expected_total);
    assert_eq!(f.n_tensors, tensors.len() as u64);
    assert_eq!(
        f.n_params,
        tensors
            .iter()
            .map(|(_, d, _)| d.iter().product::<u64>())
            .sum::<u64>()
    );
    assert_eq!(f.expert_tensor_params, 0);
    assert!(!f.output_tied);
    assert!(!f.pooling_or_embedding);
    assert_eq!(f.layer_bytes, vec![layer, layer]);
    assert_eq!(f.token_embd_bytes, embd);
    assert_eq!(f.output_bytes, embd);
    assert_eq!(f.non_layer_bytes, 2 * embd + HIDDEN * 4);
    assert_eq!(f.non_layer_bytes + 2 * layer, expected_total);
    assert_eq!(
        (f.sliding_window, f.sliding_window_pattern, f.swa_layers),
        (None, None, 0)
    );
    assert_eq!(
        (
            f.expert_count,
            f.expert_used_count,
            f.expert_feed_forward_length
        ),
        (None, None, None)
    );
    assert_eq!(f.file_type_name.as_deref(), Some("Q4_K_M"));
}

#[test]
fn large_arrays_are_skipped_not_stored() {
    let mut metadata = llama_metadata(150_000);
    metadata.push((
        "tokenizer.ggml.token_type",
        GgufValue::Array(GgufArray::new(
            GgufValueType::I32,
            (0..150_000).map(GgufValue::I32).collect(),
        )),
    ));
    metadata.push(("tokenizer.ggml.merges", strings("a b", 1025)));
    metadata.push(("small", u32s(&[1, 2, 3])));
    metadata.push(("edge", strings("e", 1024)));
    let h = read_ok(&write(&metadata, &llama_tensors()));

    let array = |key: &str| match h.metadata.get(key) {
        Some(GgufValue::Array(a)) => a.clone(),
        other => panic!("{key}: expected an array, got {other:?}"),
    };
    let tokens = array("tokenizer.ggml.tokens");
    assert_eq!(
        (tokens.element_type, tokens.len, tokens.values),
        (GgufValueType::String, 150_000, None)
    );
    let types = array("tokenizer.ggml.token_type");
    assert_eq!(
        (types.element_type, types.len, types.values),
        (GgufValueType::I32, 150_000, None)
    );
    assert_eq!(array("tokenizer.ggml.merges").values, None);
    assert_eq!(
        array("small").values,
        Some(vec![
            GgufValue::U32(1),
            GgufValue::U32(2),
            GgufValue::U32(3)
        ])
    );
    assert_eq!(array("edge").values.map(|v| v.len()), Some(1024));
    // Keys after the skipped arrays still parse.
    assert_eq!(h.tensors.len(), llama_tensors().len());
    assert_eq!(facts_ok(&h).vocab_size, 150_000);
}

#[test]
fn nested_arrays_are_skipped_and_reading_goes_on() {
    let inner = |n: u32| {
        GgufValue::Array(GgufArray::new(
            GgufValueType::U32,
            (0..n).map(GgufValue::U32).collect(),
        ))
    };
    let nested = GgufValue::Array(GgufArray::new(
        GgufValueType::Array,
        vec![inner(2), inner(3)],
    ));
    let mut metadata = llama_metadata(10);
    metadata.insert(0, ("nested", nested));
    let h = read_ok(&write(&metadata, &llama_tensors()));
    match h.metadata.get("nested") {
        Some(GgufValue::Array(a)) => {
            assert_eq!(
                (a.element_type, a.len, &a.values),
                (GgufValueType::Array, 2, &None)
            );
        }
        other => panic!("expected an array, got {other:?}"),
    }
    assert_eq!(h.architecture(), Some("llama"));
}

#[test]
fn arrays_nested_too_deep_are_refused() {
    // key `deep`: array of array of … (MAX_ARRAY_DEPTH + 1 levels), each of one element.
    let mut raw = Raw::gguf(3, 0, 1)
        .str("deep")
        .u32(GgufValueType::Array.id());
    for _ in 0..=MAX_ARRAY_DEPTH {
        raw = raw.u32(GgufValueType::Array.id()).u64(1);
    }
    let err = read_err(&raw.0);
    assert!(matches!(err, GgufError::ArrayTooDeep { .. }), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Malformed input

#[test]
fn bad_magic_is_refused() {
    let mut bytes = write(&llama_metadata(4), &llama_tensors());
    bytes[0] = b'X';
    let err = read_err(&bytes);
    assert!(matches!(err, GgufError::BadMagic { .. }), "{err}");
    assert!(err.to_string().starts_with("not a gguf file"), "{err}");
    assert!(matches!(
        read_err(b"GGML\x01\x00\x00\x00"),
        GgufError::BadMagic { .. }
    ));
}

#[test]
fn every_truncation_is_an_error() {
    let metadata = vec![
        ("general.architecture", s("llama")),
        ("general.alignment", GgufValue::U32(32)),
        ("a.u8", GgufValue::U8(1)),
        ("a.i16", GgufValue::I16(-2)),
        ("a.f64", GgufValue::F64(0.5)),
        ("a.bool", GgufValue::Bool(false)),
        ("a.list", u32s(&[1, 2])),
        ("a.tokens", strings("x", 1100)),
    ];
    let tensors = vec![
        (
            "blk.0.attn_q.weight".to_owned(),
            vec![32, 2],
            GgmlType::Q8_0,
        ),
        ("output.weight".to_owned(), vec![32], GgmlType::F16),
    ];
    let bytes = write(&metadata, &tensors);
    let mut rest = &bytes[..];
    assert!(read_header(&mut rest).is_ok());
    let header_end = bytes.len() - rest.len();
    assert!(header_end > 24 && header_end <= bytes.len());
    for end in 0..header_end {
        match read_header(&mut &bytes[..end]) {
            Err(GgufError::Truncated { .. }) => {}
            other => panic!("prefix of {end} bytes: expected a truncation error, got {other:?}"),
        }
    }
    read_ok(&bytes[..header_end]);
}

#[test]
fn a_huge_string_length_is_refused_without_allocating() {
    let key_too_long = Raw::gguf(3, 0, 1).u64(1 << 62).0;
    let err = read_err(&key_too_long);
    assert!(
        matches!(err, GgufError::StringTooLong { len, .. } if len == 1 << 62),
        "{err}"
    );
    assert!(
        err.to_string().contains("at most 16777216 are allowed"),
        "{err}"
    );

    let value_too_long = Raw::gguf(3, 0, 1)
        .str("k")
        .u32(GgufValueType::String.id())
        .u64(1 << 62)
        .0;
    assert!(matches!(
        read_err(&value_too_long),
        GgufError::StringTooLong { .. }
    ));

    let name_too_long = Raw::gguf(3, 1, 0).u64(u64::MAX).0;
    assert!(matches!(
        read_err(&name_too_long),
        GgufError::StringTooLong { .. }
    ));

    // Within the limit but absent: the reader reads what is there, then reports the truncation.
    let short = Raw::gguf(3, 0, 1)
        .str("k")
        .u32(GgufValueType::String.id())
        .u64(MAX_STRING_LEN)
        .0;
    assert!(matches!(read_err(&short), GgufError::Truncated { .. }));
}

#[test]
fn huge_counts_are_refused() {
    assert!(matches!(
        read_err(&Raw::gguf(3, u64::MAX, 0).0),
        GgufError::TooMany {
            what: "tensors",
            ..
        }
    ));
    assert!(matches!(
        read_err(&Raw::gguf(3, 0, 1 << 40).0),
        GgufError::TooMany { .. }
    ));
    let array = Raw::gguf(3, 0, 1)
        .str("a")
        .u32(GgufValueType::Array.id())
        .u32(GgufValueType::U8.id())
        .u64(1 << 60)
        .0;
    assert!(matches!(read_err(&array), GgufError::ArrayTooLong { .. }));
}

#[test]
fn unknown_value_types_are_refused() {
    let err = read_err(&Raw::gguf(3, 0, 1).str("general.x").u32(13).0);
    assert!(
        matches!(&err, GgufError::UnknownValueType { key, type_id: 13 } if key == "general.x"),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "metadata key `general.x` has unknown value type 13"
    );

    let element = Raw::gguf(3, 0, 1)
        .str("a")
        .u32(GgufValueType::Array.id())
        .u32(99)
        .u64(0)
        .0;
    assert!(matches!(
        read_err(&element),
        GgufError::UnknownValueType { type_id: 99, .. }
    ));
}

#[test]
fn unknown_ggml_types_name_the_tensor() {
    for type_id in [4, 5, 31, 36, 38, 43, 1000] {
        let bytes = Raw::gguf(3, 1, 0)
            .tensor("blk.0.attn_q.weight", &[256, 256], type_id, 0)
            .0;
        let err = read_err(&bytes);
        assert_eq!(
            err.to_string(),
            format!("tensor `blk.0.attn_q.weight` has unknown ggml type {type_id}")
        );
    }
}

#[test]
fn more_than_four_dimensions_are_refused() {
    let bytes = Raw::gguf(3, 1, 0)
        .tensor("blk.0.attn_q.weight", &[1, 1, 1, 1, 1], 0, 0)
        .0;
    assert_eq!(
        read_err(&bytes).to_string(),
        "tensor `blk.0.attn_q.weight` has 5 dimensions: at most 4 are allowed"
    );
}

#[test]
fn bad_tensor_geometry_is_refused() {
    let partial = Raw::gguf(3, 1, 0)
        .tensor("t", &[100, 2], GgmlType::Q4_K.id(), 0)
        .0;
    let err = read_err(&partial);
    assert!(
        matches!(
            err,
            GgufError::PartialBlock {
                row: 100,
                block: 256,
                ..
            }
        ),
        "{err}"
    );

    let overflow = Raw::gguf(3, 1, 0)
        .tensor("t", &[1 << 32, 1 << 32, 2], 0, 0)
        .0;
    assert!(matches!(
        read_err(&overflow),
        GgufError::TensorTooLarge { .. }
    ));

    let misaligned = Raw::gguf(3, 1, 0).tensor("t", &[8], 0, 17).0;
    assert!(matches!(
        read_err(&misaligned),
        GgufError::MisalignedTensor {
            offset: 17,
            alignment: 32,
            ..
        }
    ));

    let twice = Raw::gguf(3, 2, 0)
        .tensor("t", &[8], 0, 0)
        .tensor("t", &[8], 0, 32)
        .0;
    assert!(matches!(read_err(&twice), GgufError::DuplicateTensor(name) if name == "t"));
}

#[test]
fn duplicate_keys_and_bad_alignment_are_refused() {
    let u32_kv = |r: Raw, k: &str, v: u32| r.str(k).u32(GgufValueType::U32.id()).u32(v);
    let twice = u32_kv(u32_kv(Raw::gguf(3, 0, 2), "k", 1), "k", 2).0;
    assert!(matches!(read_err(&twice), GgufError::DuplicateKey(k) if k == "k"));
    let bad = u32_kv(Raw::gguf(3, 0, 1), "general.alignment", 48).0;
    assert!(matches!(read_err(&bad), GgufError::BadAlignment(_)));
    let zero = u32_kv(Raw::gguf(3, 0, 1), "general.alignment", 0).0;
    assert!(matches!(read_err(&zero), GgufError::BadAlignment(_)));
}

#[test]
fn versions_other_than_2_and_3_are_refused() {
    let err = read_err(&Raw::gguf(1, 0, 0).0);
    assert!(matches!(err, GgufError::VersionOne), "{err}");
    assert!(err.to_string().contains("version 1 is no longer supported"));

    let err = read_err(&Raw::gguf(3u32.swap_bytes(), 0, 0).0);
    assert!(matches!(err, GgufError::BigEndian { version: 3 }), "{err}");
    assert!(err.to_string().contains("big-endian"));

    assert!(matches!(
        read_err(&Raw::gguf(4, 0, 0).0),
        GgufError::UnsupportedVersion(4)
    ));
    assert!(matches!(
        read_err(&Raw::gguf(0, 0, 0).0),
        GgufError::UnsupportedVersion(0)
    ));

    let v2 = read_ok(&Raw::gguf(2, 0, 0).0);
    assert_eq!((v2.version, v2.data_offset), (2, 32));
}

#[test]
fn reader_errors_other_than_eof_are_reported() {
    struct Failing;
    impl std::io::Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk on fire"))
        }
    }
    let err = read_header(&mut Failing).err();
    assert!(matches!(err, Some(GgufError::Io { .. })), "{err:?}");
}

#[test]
fn an_endless_stream_stops_at_the_header_limit() {
    // A real header whose one array declares 2^28 u64s (2 GiB), followed by endless zeros.
    let head = Raw::gguf(3, 0, 1)
        .str("a")
        .u32(GgufValueType::Array.id())
        .u32(GgufValueType::U64.id())
        .u64(MAX_ARRAY_LEN)
        .0;
    let mut endless = std::io::Read::chain(&head[..], std::io::repeat(0));
    let err = read_header(&mut endless).err();
    assert!(
        matches!(err, Some(GgufError::HeaderTooLarge { .. })),
        "{err:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// ggml types and sizes

#[test]
fn ggml_type_table_matches_ggml() {
    // (type, id, block size, bytes per block) from ggml.h / ggml-common.h.
    let expected = [
        (GgmlType::F32, 0, 1, 4),
        (GgmlType::F16, 1, 1, 2),
        (GgmlType::Q4_0, 2, 32, 18),
        (GgmlType::Q4_1, 3, 32, 20),
        (GgmlType::Q5_0, 6, 32, 22),
        (GgmlType::Q5_1, 7, 32, 24),
        (GgmlType::Q8_0, 8, 32, 34),
        (GgmlType::Q8_1, 9, 32, 36),
        (GgmlType::Q2_K, 10, 256, 84),
        (GgmlType::Q3_K, 11, 256, 110),
        (GgmlType::Q4_K, 12, 256, 144),
        (GgmlType::Q5_K, 13, 256, 176),
        (GgmlType::Q6_K, 14, 256, 210),
        (GgmlType::Q8_K, 15, 256, 292),
        (GgmlType::IQ2_XXS, 16, 256, 66),
        (GgmlType::IQ2_XS, 17, 256, 74),
        (GgmlType::IQ3_XXS, 18, 256, 98),
        (GgmlType::IQ1_S, 19, 256, 50),
        (GgmlType::IQ4_NL, 20, 32, 18),
        (GgmlType::IQ3_S, 21, 256, 110),
        (GgmlType::IQ2_S, 22, 256, 82),
        (GgmlType::IQ4_XS, 23, 256, 136),
        (GgmlType::I8, 24, 1, 1),
        (GgmlType::I16, 25, 1, 2),
        (GgmlType::I32, 26, 1, 4),
        (GgmlType::I64, 27, 1, 8),
        (GgmlType::F64, 28, 1, 8),
        (GgmlType::IQ1_M, 29, 256, 56),
        (GgmlType::BF16, 30, 1, 2),
        (GgmlType::TQ1_0, 34, 256, 54),
        (GgmlType::TQ2_0, 35, 256, 66),
        (GgmlType::MXFP4, 39, 32, 17),
        (GgmlType::NVFP4, 40, 64, 36),
        (GgmlType::Q1_0, 41, 128, 18),
        (GgmlType::Q2_0, 42, 64, 18),
    ];
    assert_eq!(expected.len(), ALL_GGML_TYPES.len());
    for (ty, id, block, size) in expected {
        assert_eq!(GgmlType::from_u32(id), Some(ty));
        assert_eq!(
            (ty.id(), ty.block_size(), ty.type_size()),
            (id, block, size),
            "{ty}"
        );
        assert_eq!(format!("{ty:?}"), ty.name());
    }
    for removed in [4, 5, 31, 32, 33, 36, 37, 38, 43, u32::MAX] {
        assert_eq!(GgmlType::from_u32(removed), None, "{removed}");
    }
}

#[test]
fn q4_k_4096_square_is_exact() {
    let t = TensorInfo {
        name: "blk.0.attn_q.weight".to_owned(),
        dims: vec![4096, 4096],
        ggml_type: GgmlType::Q4_K,
        offset: 0,
    };
    assert_eq!(t.n_elements(), 4096 * 4096);
    assert_eq!(t.n_bytes().ok(), Some(4096 * 4096 / 256 * 144));
    assert_eq!(t.n_bytes().ok(), Some(9_437_184));

    let mxfp4 = TensorInfo {
        dims: vec![2880, 2880, 32],
        ggml_type: GgmlType::MXFP4,
        ..t.clone()
    };
    assert_eq!(mxfp4.n_bytes().ok(), Some(2880 / 32 * 17 * 2880 * 32));
    let scalar = TensorInfo {
        dims: vec![],
        ggml_type: GgmlType::F32,
        ..t.clone()
    };
    assert_eq!((scalar.n_elements(), scalar.n_bytes().ok()), (1, Some(4)));
    let empty = TensorInfo {
        dims: vec![256, 0],
        ..t.clone()
    };
    assert_eq!(empty.n_bytes().ok(), Some(0));
    let huge = TensorInfo {
        dims: vec![u64::MAX, 2],
        ggml_type: GgmlType::F32,
        ..t
    };
    assert_eq!(huge.n_elements(), u64::MAX);
    assert!(matches!(
        huge.n_bytes(),
        Err(GgufError::TensorTooLarge { .. })
    ));
}

#[test]
fn file_type_names_follow_llama_h() {
    for (id, name) in [
        (0, "F32"),
        (1, "F16"),
        (3, "Q4_1"),
        (7, "Q8_0"),
        (10, "Q2_K"),
        (12, "Q3_K_M"),
        (15, "Q4_K_M"),
        (17, "Q5_K_M"),
        (18, "Q6_K"),
        (30, "IQ4_XS"),
        (32, "BF16"),
        (38, "MXFP4_MOE"),
    ] {
        assert_eq!(llama_ftype_name(id), Some(name), "{id}");
    }
    for unknown in [5, 6, 33, 34, 35, 1024] {
        assert_eq!(llama_ftype_name(unknown), None, "{unknown}");
    }
}

// ---------------------------------------------------------------------------------------------
// Model facts

#[test]
fn gemma3_26_layers_have_22_swa_layers() {
    // llama.cpp (src/llama-model.cpp, LLM_ARCH_GEMMA3): `hparams.set_swa_pattern(6)`, and
    // src/llama-hparams.cpp `set_swa_pattern(n_pattern, dense_first = false)` sets
    // `is_swa = il % n_pattern < (n_pattern - 1)`: layers 5, 11, 17 and 23 are full, 22 are SWA.
    let mut md = minimal("gemma3", 26);
    md.push((
        "gemma3.attention.sliding_window".to_owned(),
        GgufValue::U32(512),
    ));
    let f = facts_ok(&header_of(&md));
    assert_eq!(
        (f.sliding_window, f.sliding_window_pattern, f.swa_layers),
        (Some(512), Some(6), 22)
    );

    // The same from an explicit period.
    md.push((
        "gemma3.attention.sliding_window_pattern".to_owned(),
        GgufValue::U32(6),
    ));
    assert_eq!(facts_ok(&header_of(&md)).swa_layers, 22);

    // Without a window, no SWA (newer llama.cpp: gemma3 without `sliding_window` is full).
    let f = facts_ok(&header_of(&minimal("gemma3", 26)));
    assert_eq!((f.sliding_window, f.swa_layers), (None, 0));
}

#[test]
fn gpt_oss_uses_swa_on_even_layers() {
    let mut md = minimal("gpt-oss", 24);
    md.push((
        "gpt-oss.attention.sliding_window".to_owned(),
        GgufValue::U32(128),
    ));
    md.push(("gpt-oss.expert_count".to_owned(), GgufValue::U32(32)));
    md.push(("gpt-oss.expert_used_count".to_owned(), GgufValue::U32(4)));
    md.push((
        "gpt-oss.expert_feed_forward_length".to_owned(),
        GgufValue::U32(2880),
    ));
    let f = facts_ok(&header_of(&md));
    assert_eq!((f.sliding_window_pattern, f.swa_layers), (Some(2), 12));
    assert_eq!(
        (
            f.expert_count,
            f.expert_used_count,
            f.expert_feed_forward_length
        ),
        (Some(32), Some(4), Some(2880))
    );
}

#[test]
fn per_layer_swa_flags_and_kv_heads() {
    let mut md = minimal("gemma4", 5);
    md.push((
        "gemma4.attention.sliding_window".to_owned(),
        GgufValue::U32(512),
    ));
    md.push((
        "gemma4.attention.sliding_window_pattern".to_owned(),
        GgufValue::Array(GgufArray::new(
            GgufValueType::Bool,
            [true, true, true, true, false]
                .map(GgufValue::Bool)
                .to_vec(),
        )),
    ));
    md.retain(|(k, _)| k != "gemma4.attention.head_count_kv");
    md.push((
        "gemma4.attention.head_count_kv".to_owned(),
        u32s(&[2, 2, 2, 2, 8]),
    ));
    let f = facts_ok(&header_of(&md));
    assert_eq!((f.sliding_window_pattern, f.swa_layers), (None, 4));
    assert_eq!(f.head_count_kv, 8);
    assert_eq!(f.head_count_kv_per_layer, Some(vec![2, 2, 2, 2, 8]));
    assert_eq!((f.key_length, f.value_length), (1152 / 4, 1152 / 4));
}

#[test]
fn defaults_fallbacks_and_embedding_models() {
    // head_count_kv defaults to head_count; vocab from token_embd; tied output; bert is embedding.
    let metadata = vec![
        ("general.architecture", s("bert")),
        ("bert.block_count", GgufValue::U32(1)),
        ("bert.context_length", GgufValue::U32(512)),
        ("bert.embedding_length", GgufValue::U32(384)),
        ("bert.attention.head_count", GgufValue::U32(12)),
        ("bert.attention.key_length", GgufValue::U32(40)),
    ];
    let tensors = vec![
        (
            "token_embd.weight".to_owned(),
            vec![384, 30_522],
            GgmlType::F16,
        ),
        (
            "blk.0.attn_q.weight".to_owned(),
            vec![384, 384],
            GgmlType::F16,
        ),
        (
            "blk.7.attn_q.weight".to_owned(),
            vec![384, 384],
            GgmlType::F16,
        ),
    ];
    let f = facts_ok(&read_ok(&write(&metadata, &tensors)));
    assert_eq!(
        (f.head_count, f.head_count_kv, f.key_length, f.value_length),
        (12, 12, 40, 32)
    );
    assert_eq!(f.vocab_size, 30_522);
    assert!(f.output_tied);
    assert_eq!(f.output_bytes, 0);
    assert!(f.pooling_or_embedding);
    assert_eq!(f.layer_bytes, vec![384 * 384 * 2]);
    // blk.7 is beyond block_count: counted outside the layers.
    assert_eq!(f.non_layer_bytes, 384 * 30_522 * 2 + 384 * 384 * 2);
    assert_eq!(f.file_type_name, None);

    let mut md = minimal("qwen3", 1);
    md.push(("qwen3.pooling_type".to_owned(), GgufValue::U32(3)));
    assert!(facts_ok(&header_of(&md)).pooling_or_embedding);
}

#[test]
fn expert_tensors_are_counted() {
    let tensors = vec![
        ("token_embd.weight".to_owned(), vec![64, 10], GgmlType::F32),
        (
            "blk.0.ffn_gate_inp.weight".to_owned(),
            vec![64, 4],
            GgmlType::F32,
        ),
        (
            "blk.0.ffn_up_exps.weight".to_owned(),
            vec![64, 32, 4],
            GgmlType::MXFP4,
        ),
        (
            "blk.0.ffn_up_exps.bias".to_owned(),
            vec![32, 4],
            GgmlType::F32,
        ),
        (
            "blk.0.ffn_up_shexp.weight".to_owned(),
            vec![64, 32],
            GgmlType::Q8_0,
        ),
    ];
    let metadata = vec![
        ("general.architecture", s("qwen3moe")),
        ("qwen3moe.block_count", GgufValue::U32(1)),
        ("qwen3moe.context_length", GgufValue::U32(512)),
        ("qwen3moe.embedding_length", GgufValue::U32(64)),
    ];
    let f = facts_ok(&read_ok(&write(&metadata, &tensors)));
    assert_eq!(f.expert_tensor_params, 64 * 32 * 4 + 32 * 4);
    assert_eq!(f.n_params, 640 + 256 + 64 * 32 * 4 + 32 * 4 + 64 * 32);
    assert_eq!(f.vocab_size, 10);
    assert_eq!(f.head_count, 0);
}

#[test]
fn missing_and_mistyped_keys_are_errors() {
    let h = header_of(&[("general.architecture".to_owned(), s("llama"))]);
    assert_eq!(
        h.model_facts().err().map(|e| e.to_string()),
        Some("metadata key `llama.block_count` is missing".to_owned())
    );

    let h = header_of(&[]);
    assert!(
        matches!(h.model_facts(), Err(GgufError::MissingKey(k)) if k == "general.architecture")
    );

    let mut md = minimal("llama", 2);
    md[1].1 = s("two");
    let err = header_of(&md).model_facts().err().map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("metadata key `llama.block_count` is a string: expected a non-negative integer")
    );

    let mut md = minimal("llama", 2);
    md[1].1 = GgufValue::U64(1 << 40);
    assert!(matches!(
        header_of(&md).model_facts(),
        Err(GgufError::WrongType { .. })
    ));

    let mut md = minimal("llama", 2);
    md.retain(|(k, _)| k != "tokenizer.ggml.tokens");
    assert!(
        matches!(header_of(&md).model_facts(), Err(GgufError::MissingKey(k)) if k == "tokenizer.ggml.tokens")
    );
}

#[test]
fn custom_alignment_is_honoured() {
    let mut metadata = llama_metadata(4);
    metadata.push(("general.alignment", GgufValue::U32(64)));
    let bytes = write(&metadata, &llama_tensors());
    let h = read_ok(&bytes);
    assert_eq!((h.alignment, h.data_offset % 64), (64, 0));
    assert!(h.tensors.iter().all(|t| t.offset % 64 == 0));
}

#[test]
fn write_header_refuses_what_it_cannot_write() {
    let without_values = GgufValue::Array(GgufArray {
        element_type: GgufValueType::U8,
        len: 2000,
        values: None,
    });
    let mut sink = Vec::new();
    let err = write_header(&mut sink, &[("a", without_values)], &[]).err();
    assert_eq!(
        err.map(|e| e.kind()),
        Some(std::io::ErrorKind::InvalidInput)
    );

    let mixed = GgufValue::Array(GgufArray::new(
        GgufValueType::U8,
        vec![GgufValue::U8(1), GgufValue::U16(2)],
    ));
    assert!(write_header(&mut Vec::new(), &[("a", mixed)], &[]).is_err());

    let five: &[u64] = &[1, 1, 1, 1, 1];
    assert!(write_header(&mut Vec::new(), &[], &[("t", five, GgmlType::F32)]).is_err());
    let partial: &[u64] = &[100];
    assert!(write_header(&mut Vec::new(), &[], &[("t", partial, GgmlType::Q4_K)]).is_err());
}

// ---------------------------------------------------------------------------------------------
// A real file (skipped unless FLEETFIT_SMOLLM2_GGUF names it)

#[test]
fn smollm2_135m_q4_1_reads_exactly() {
    let Some(path) = std::env::var_os("FLEETFIT_SMOLLM2_GGUF") else {
        eprintln!(
            "note: FLEETFIT_SMOLLM2_GGUF is not set: skipping the SmolLM2-135M-Instruct.Q4_1.gguf check"
        );
        return;
    };
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) => panic!("cannot open {}: {e}", path.display()),
    };
    let file_len = file.metadata().map_or(0, |m| m.len());
    let mut reader = std::io::BufReader::new(file);
    let h = match read_header(&mut reader) {
        Ok(h) => h,
        Err(e) => panic!("{e}"),
    };
    let f = facts_ok(&h);
    let count = |ty: GgmlType| h.tensors.iter().filter(|t| t.ggml_type == ty).count();
    eprintln!(
        "SmolLM2: version {}, {} tensors ({} Q4_1, {} F32, {} Q8_0), data_offset {}, \
         tensor_data_bytes {}, tensor_data_end {:?}, file {} bytes, facts {f:?}",
        h.version,
        h.tensors.len(),
        count(GgmlType::Q4_1),
        count(GgmlType::F32),
        count(GgmlType::Q8_0),
        h.data_offset,
        f.tensor_data_bytes,
        h.tensor_data_end().ok(),
        file_len,
    );
    assert_eq!(h.version, 3);
    assert_eq!(f.architecture, "llama");
    assert_eq!(
        (f.block_count, f.embedding_length, f.feed_forward_length),
        (30, 576, Some(1536))
    );
    assert_eq!((f.head_count, f.head_count_kv, f.key_length), (9, 3, 64));
    assert_eq!((f.context_length, f.vocab_size), (8192, 49_152));
    assert_eq!(
        (
            count(GgmlType::Q4_1),
            count(GgmlType::F32),
            count(GgmlType::Q8_0)
        ),
        (210, 61, 1)
    );
    assert_eq!(f.file_type_name.as_deref(), Some("Q4_1"));
    assert_eq!(h.data_offset + f.tensor_data_bytes, file_len);
    assert_eq!(file_len, 98_362_432);
}
