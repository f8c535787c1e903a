//! CEL `when:` conditions: compiled and checked against the device schema when policies load,
//! evaluated against a device view at plan time. A runtime error is a non-match plus a warning.

use crate::profile::DeviceProfile;
use cel::common::ast::Expr;
use cel::objects::{Key, Map};
use cel::{Context, Program, Value};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// Fields a `when:` may read under `device.`; `labels.*` is open.
pub const DEVICE_FIELDS: &[&str] = &[
    "id",
    "hostname",
    "labels",
    "class",
    "os.kind",
    "os.version",
    "cpu.arch",
    "cpu.model",
    "cpu.cores",
    "cpu.threads",
    "cpu.features",
    "memory.total_gib",
    "memory.available_gib",
    "memory.total_bytes",
    "memory.available_bytes",
    "gpu_count",
    "gpu_vendors",
    "gpu_names",
    "gpu_memory_gib",
    "unified_memory",
    "has_npu",
    "npu_vendors",
];

/// A compiled condition.
pub struct Condition {
    program: Program,
    pub source: String,
    /// Top-level `device` fields the condition reads (`None`: the whole device).
    pub fields: Option<BTreeSet<String>>,
}

impl std::fmt::Debug for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Condition")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// A compile or schema error, with the 1-based (line, column) inside the expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CelError {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl Condition {
    /// Compiles `source` and checks every `device.…` path against [`DEVICE_FIELDS`].
    pub fn compile(source: &str) -> Result<Condition, Vec<CelError>> {
        let program = Program::compile(source).map_err(|errs| {
            errs.errors
                .iter()
                .map(|e| CelError {
                    line: u32::try_from(e.pos.0.max(1)).unwrap_or(1),
                    column: u32::try_from(e.pos.1.max(0) + 1).unwrap_or(1),
                    message: e.msg.clone(),
                })
                .collect::<Vec<_>>()
        })?;
        let mut errors = Vec::new();
        let mut paths = Vec::new();
        let mut bound = Vec::new();
        collect_device_paths(&program.expression().expr, &mut paths, &mut bound);
        let fields = if paths.iter().any(|(p, _)| p.is_empty()) {
            None
        } else {
            Some(
                paths
                    .iter()
                    .map(|(p, _)| p.split('.').next().unwrap_or_default().to_owned())
                    .collect(),
            )
        };
        for (path, id) in paths {
            if !path.is_empty() && !path_is_known(&path) {
                let offset = program
                    .source_info()
                    .offset_for(id)
                    .map_or(0, |(start, _)| start);
                let (line, column) = line_column(source, offset);
                let hint = crate::catalog::did_you_mean(&path, DEVICE_FIELDS.iter().copied());
                errors.push(CelError {
                    line,
                    column,
                    message: format!("`device.{path}` is not a field of device profiles{hint}"),
                });
            }
        }
        let vars: Vec<String> = program
            .references()
            .variables()
            .into_iter()
            .map(str::to_owned)
            .collect();
        for v in vars {
            if v != "device" && !bound.contains(&v) && !v.starts_with('@') && !v.starts_with("__") {
                errors.push(CelError {
                    line: 1,
                    column: 1,
                    message: format!("unknown variable `{v}`: conditions can only read `device`"),
                });
            }
        }
        if errors.is_empty() {
            Ok(Condition {
                program,
                source: source.to_owned(),
                fields,
            })
        } else {
            Err(errors)
        }
    }

    /// Evaluates in a device context (see [`device_context`]). `Err` carries a one-line reason.
    pub fn eval(&self, ctx: &Context<'_, '_>) -> Result<bool, String> {
        match self.program.execute(ctx) {
            Ok(Value::Bool(b)) => Ok(b),
            Ok(other) => Err(format!("condition evaluated to {other:?}, not a bool")),
            Err(e) => Err(format!("{e}")),
        }
    }
}

/// A CEL context holding `device`, built once per device and shared by all its conditions.
/// The standard environment is built once per process: building it per evaluation
/// (`Context::default()`) costs more than planning the device.
pub fn device_context(
    p: &DeviceProfile,
    fields: Option<&BTreeSet<String>>,
) -> Context<'static, 'static> {
    static STDLIB: std::sync::OnceLock<Arc<cel::Env>> = std::sync::OnceLock::new();
    let env = STDLIB.get_or_init(|| Arc::new(cel::Env::stdlib()));
    let mut ctx = Context::with_env(Arc::clone(env));
    ctx.add_variable_from_value("device", device_view(p, fields));
    ctx
}

fn path_is_known(path: &str) -> bool {
    path.starts_with("labels.")
        || DEVICE_FIELDS.contains(&path)
        || DEVICE_FIELDS
            .iter()
            .any(|f| f.starts_with(&format!("{path}.")))
}

/// 1-based (line, column) of a character offset in `source`.
fn line_column(source: &str, offset: u32) -> (u32, u32) {
    let mut line = 1;
    let mut column = 1;
    for (i, c) in source.chars().enumerate() {
        if i as u64 >= u64::from(offset) {
            break;
        }
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    (line, column)
}

/// Collects `device.a.b` selector chains (outermost only) with the id of their root, and the
/// names comprehensions bind.
fn collect_device_paths(expr: &Expr, out: &mut Vec<(String, u64)>, bound: &mut Vec<String>) {
    match expr {
        Expr::Select(sel) => {
            let mut segments = vec![sel.field.clone()];
            let mut cur = &sel.operand.expr;
            loop {
                match cur {
                    Expr::Select(inner) => {
                        segments.push(inner.field.clone());
                        cur = &inner.operand.expr;
                    }
                    Expr::Ident(name) if name == "device" => {
                        segments.reverse();
                        out.push((segments.join("."), sel.operand.id));
                        return;
                    }
                    other => {
                        collect_device_paths(other, out, bound);
                        return;
                    }
                }
            }
        }
        Expr::Call(call) => {
            if let Some(t) = &call.target {
                collect_device_paths(&t.expr, out, bound);
            }
            for a in &call.args {
                collect_device_paths(&a.expr, out, bound);
            }
        }
        Expr::List(l) => {
            for e in &l.elements {
                collect_device_paths(&e.expr, out, bound);
            }
        }
        // `device` itself, not one of its fields: the condition needs all of it.
        Expr::Ident(name) if name == "device" => out.push((String::new(), 0)),
        Expr::Comprehension(c) => {
            bound.push(c.iter_var.clone());
            bound.extend(c.iter_var2.clone());
            bound.push(c.accu_var.clone());
            collect_device_paths(&c.iter_range.expr, out, bound);
            collect_device_paths(&c.loop_step.expr, out, bound);
            collect_device_paths(&c.loop_cond.expr, out, bound);
            collect_device_paths(&c.result.expr, out, bound);
            collect_device_paths(&c.accu_init.expr, out, bound);
        }
        _ => {}
    }
}

fn s(v: &str) -> Value {
    Value::String(Arc::new(v.to_owned()))
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    let m: HashMap<Key, Value> = entries
        .into_iter()
        .map(|(k, v)| (Key::String(Arc::new(k.to_owned())), v))
        .collect();
    Value::Map(Map { map: Arc::new(m) })
}

fn list(items: Vec<Value>) -> Value {
    Value::List(Arc::new(items))
}

/// The `device` value conditions see; with `fields`, only those top-level fields (converting
/// the whole profile into CEL values for every device would dominate fleet planning).
pub fn device_view(p: &DeviceProfile, fields: Option<&BTreeSet<String>>) -> Value {
    const GIB: f64 = (1u64 << 30) as f64;
    let want = |k: &str| fields.is_none_or(|f| f.contains(k));
    let mut entries: Vec<(&str, Value)> = Vec::new();
    let mut add = |k: &'static str, v: &dyn Fn() -> Value| {
        if want(k) {
            entries.push((k, v()));
        }
    };
    add("id", &|| s(&p.id));
    add("hostname", &|| s(&p.hostname));
    add("labels", &|| {
        let labels: HashMap<Key, Value> = p
            .labels
            .iter()
            .map(|(k, v)| (Key::String(Arc::new(k.clone())), s(v)))
            .collect();
        Value::Map(Map {
            map: Arc::new(labels),
        })
    });
    add("class", &|| s(p.class.as_deref().unwrap_or("")));
    add("os", &|| {
        map(vec![("kind", s(&p.os.kind)), ("version", s(&p.os.version))])
    });
    add("cpu", &|| {
        map(vec![
            ("arch", s(&p.cpu.arch)),
            ("model", s(&p.cpu.model)),
            ("cores", Value::Int(i64::from(p.cpu.cores))),
            ("threads", Value::Int(i64::from(p.cpu.threads))),
            (
                "features",
                list(p.cpu.features.iter().map(|f| s(f)).collect()),
            ),
        ])
    });
    add("memory", &|| {
        map(vec![
            ("total_gib", Value::Float(p.memory.total_bytes as f64 / GIB)),
            (
                "available_gib",
                Value::Float(p.memory.available_bytes as f64 / GIB),
            ),
            ("total_bytes", Value::UInt(p.memory.total_bytes)),
            ("available_bytes", Value::UInt(p.memory.available_bytes)),
        ])
    });
    add("gpu_count", &|| Value::Int(p.gpus.len() as i64));
    add("gpu_vendors", &|| {
        list(p.gpus.iter().map(|g| s(g.vendor.as_str())).collect())
    });
    add("gpu_names", &|| {
        list(p.gpus.iter().map(|g| s(&g.name)).collect())
    });
    add("gpu_memory_gib", &|| {
        Value::Float(
            p.gpus
                .iter()
                .filter_map(|g| g.memory_total_bytes)
                .max()
                .unwrap_or(0) as f64
                / GIB,
        )
    });
    add("unified_memory", &|| {
        Value::Bool(p.gpus.iter().any(|g| g.unified))
    });
    add("has_npu", &|| Value::Bool(!p.npus.is_empty()));
    add("npu_vendors", &|| {
        list(p.npus.iter().map(|n| s(n.vendor.as_str())).collect())
    });
    map(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_fields_profiles_do_not_have() {
        let e = Condition::compile("device.memory.total_gb >= 64").unwrap_err();
        assert!(e[0].message.contains("`device.memory.total_gb`"), "{e:?}");
        assert!(
            e[0].message.contains("did you mean `memory.total_gib`"),
            "{e:?}"
        );
    }

    #[test]
    fn reports_parse_errors_with_position() {
        let e = Condition::compile("device.labels.dept == ").unwrap_err();
        assert_eq!(e[0].line, 1);
    }

    #[test]
    fn accepts_labels_and_comprehensions() {
        assert!(
            Condition::compile(
                "device.labels.dept == 'finance' && device.gpu_names.exists(n, n.contains('GB10'))"
            )
            .is_ok()
        );
    }
}
