//! Figure 4: component start: compile, cached load + instantiate, size.

use std::path::Path;
use std::time::Instant;

use super::{ChildSpec, MIB, metrics, remove_db};
use crate::bench::{ChildResult, Target};
use host_harness::erp::errors::ErpError;
use host_harness::erp::store::Db;

/// 4. Component start: compile, cached load + instantiate, size.
pub fn run(spec: &ChildSpec, out: &mut ChildResult) -> anyhow::Result<()> {
    use host_harness::runtime::{
        Runtime, RuntimeOptions, SessionGrants, cache, engine, read_component,
    };
    let settings = crate::settings(spec.config.as_deref())?;
    let path = &settings.plugin_path.clone().unwrap_or_default();
    let options = |dir: &Path| {
        let mut o = RuntimeOptions::new(dir.to_owned());
        o.granted_origins = settings.granted_origins.clone();
        o
    };
    #[rustfmt::skip]
    let mut m = metrics([
        ("4", "size", "component size", "MiB", Some(Target::AtMost(1.5))),
        ("4", "compile_ms", "load with compile from .wasm (empty cache)", "ms", None),
        ("4", "cached_ms",
         "load from the compile cache + instantiate", "ms", Some(Target::AtMost(5.0))),
        ("4", "load_ms",
         "  of which Runtime::load (read, validate, hash, deserialize, link)", "ms", None),
        ("4", "instantiate_ms", "  of which session: storage open + instantiate", "ms", None),
        ("4", "validate_ms", "  read + validate the .wasm", "ms", None),
        ("4", "cache_ms", "  cache read + blake3 check + deserialize", "ms", None),
    ]);
    let [
        size,
        compile,
        cached,
        load_ms,
        inst_ms,
        validate_ms,
        cache_ms,
    ] = &mut m;
    let bytes = read_component(path)?;
    let warm = spec.workdir.join("fig4-cache");
    let _ = std::fs::remove_dir_all(&warm);
    Runtime::load(path, options(&warm))?;
    let db_path = spec.workdir.join("fig4.sqlite");
    remove_db(&db_path);
    drop(Db::open(&db_path)?);
    for run in 0..spec.runs {
        size.samples.push(bytes.len() as f64 / MIB);
        let cold = spec.workdir.join(format!("fig4-cold-{run}"));
        let _ = std::fs::remove_dir_all(&cold);
        let t = Instant::now();
        let rt = Runtime::load(path, options(&cold))?;
        compile.samples.push(t.elapsed().as_secs_f64() * 1000.0);
        if rt.from_cache {
            return Err(anyhow::Error::msg("the cold load hit a cache"));
        }
        let _ = std::fs::remove_dir_all(&cold);

        let t = Instant::now();
        let rt = Runtime::load(path, options(&warm))?;
        let loaded = t.elapsed();
        let session = rt
            .session(SessionGrants::new("bench", &db_path))
            .map_err(ErpError::Call)?;
        let total = t.elapsed();
        drop(session);
        if !rt.from_cache {
            return Err(anyhow::Error::msg("the warm load missed the cache"));
        }
        cached.samples.push(total.as_secs_f64() * 1000.0);
        load_ms.samples.push(loaded.as_secs_f64() * 1000.0);
        inst_ms
            .samples
            .push((total - loaded).as_secs_f64() * 1000.0);

        let t = Instant::now();
        let _ = read_component(path)?;
        validate_ms.samples.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        let (_, origin) = cache::load(engine(), &warm, &bytes)
            .map_err(|e| anyhow::Error::msg(format!("{e:#}")))?;
        cache_ms.samples.push(t.elapsed().as_secs_f64() * 1000.0);
        if origin != cache::Origin::Cache {
            return Err(anyhow::Error::msg("the cache entry was not used"));
        }
    }
    out.metrics.extend(m);
    let _ = std::fs::remove_dir_all(&warm);
    remove_db(&db_path);
    Ok(())
}
