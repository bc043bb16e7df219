//! `load-bench`: runs the load benchmarks (see `benches/load/README.md`).
//!
//! It starts one `load-server MODE 127.0.0.1:0` per mode, plus a reference bare-hyper
//! server, all pinned to one CPU (`taskset`; an idle server uses none of it), and drives them
//! with `load-gen` pinned to the other CPU in short slices. Each slice's `RESULT` line gives
//! requests per second, latency, and the server's CPU time per request over the measured
//! window.
//!
//! Phases, each run once per round, every mode once per phase, in an order that starts one
//! mode later each round:
//!
//! * saturated: one server at a time, every connection sending its next request as soon as
//!   the previous answer arrived: throughput, and CPU time per request at full load;
//! * paired, one per fixed rate (`--rate`): the mode's server and the reference hyper
//!   server, each at that rate, at the same time. CPU time per request is then compared at
//!   equal load *and under the same machine conditions*: on this shared VM the CPU time of
//!   the same work moves by up to 2× from one second to the next, which no amount of
//!   sequential interleaving averages out well, but it moves alike for two processes that
//!   share the CPU at the same moment. The `hyper` row (hyper paired with hyper) is an A/A
//!   test: its spread is the noise floor of the ratios. The order in which the two
//!   generators start alternates between rounds.
//!
//! The tables give medians over the rounds; ratios are taken within a slice (paired) or a
//! round (saturated) before their median is taken.
//!
//! `--suite redis|postgres|distributed` runs the modes over a shared store instead
//! of the default set, saturated only unless `--rate` is given. Their servers get a
//! namespace of this run (`--namespace`), and after the run `load-server --cleanup` deletes
//! what each left in its store. With Redis, the
//! redis-server's own CPU time per request is measured too (its pid from `INFO server`).

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

type BoxError = Box<dyn StdError + Send + Sync>;

use fastsession_benches::{DISTRIBUTED_MODES, LOAD_MODES, LOAD_SUITES, all_load_modes};

const USAGE: &str = "\
usage: load-bench [options]
  --rounds N         rounds; each runs every phase and mode once (default 10)
  --duration SECS    measured window per slice (default 1.5)
  --warmup SECS      warm-up per slice, on fresh connections (default 0.5)
  --connections N    keep-alive connections per generator (default 32)
  --rate R[,R...]    one fixed-rate phase per rate, in requests per second per server;
                     0 skips them (default 5000,15000)
  --unpaired         run the fixed-rate phases one server at a time, like the saturated
                     phase, instead of paired with the reference hyper server
  --no-saturated     skip the saturated phase
  --modes a,b,...    modes to run (default: the suite's); `hyper` (and `actix` with an
                     actix mode) is always added as the baseline
  --suite NAME       a set of modes: default (the modes below), redis, postgres,
                     distributed (both).
                     Modes over a shared store alone (by --suite or --modes) run the
                     saturated phase only unless --rate is given
  --namespace NS     key prefix / schema of this run's sessions in the shared stores
                     (default fsbench_PID_SECONDS); cleaned up at the end
  --no-store-cpu     do not measure redis-server's CPU time
  --keep-all         keep the slices the disturbance rules would leave out of the tables
                     (they are flagged excluded=1 in --raw either way)
  --server-cpu N     CPU for the servers (default 0)
  --gen-cpu N        CPU for the load generators (default 1)
  --raw FILE         also write every slice's RESULT line to FILE
modes: hyper hyper-tower fastsession-untouched fastsession-cookie fastsession-memory
       tower-sessions-untouched tower-sessions actix actix-session floor-cookie
       over Redis (127.0.0.1:6379, or FASTSESSION_BENCH_REDIS_URL): tower-sessions-redis
       actix-session-redis fastsession-redis floor-redis floor-plain-redis; over PostgreSQL
       (127.0.0.1:5432/test, or FASTSESSION_BENCH_POSTGRES_URL): tower-sessions-postgres
       fastsession-postgres";

#[derive(Debug, Clone)]
struct Options {
    rounds: usize,
    duration: f64,
    warmup: f64,
    connections: usize,
    rates: Vec<f64>,
    paired: bool,
    saturated: bool,
    modes: Vec<String>,
    namespace: String,
    store_cpu: bool,
    keep_all: bool,
    /// The Redis server's pid, when its CPU time is measured.
    store_pid: Option<u32>,
    server_cpu: usize,
    gen_cpu: usize,
    raw: Option<PathBuf>,
}

fn parse_options() -> Result<Options, BoxError> {
    let mut options = Options {
        rounds: 10,
        duration: 1.5,
        warmup: 0.5,
        connections: 32,
        rates: vec![5000.0, 15000.0],
        paired: true,
        saturated: true,
        modes: LOAD_MODES.iter().map(|m| (*m).to_owned()).collect(),
        namespace: format!(
            "fsbench_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        ),
        store_cpu: true,
        keep_all: false,
        store_pid: None,
        server_cpu: 0,
        gen_cpu: 1,
        raw: None,
    };
    let mut rates_given = false;
    let mut suite: Option<&'static [&'static str]> = None;
    let mut modes_given: Option<Vec<String>> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--rounds" => options.rounds = value()?.parse()?,
            "--duration" => options.duration = value()?.parse()?,
            "--warmup" => options.warmup = value()?.parse()?,
            "--connections" => options.connections = value()?.parse()?,
            "--rate" => {
                rates_given = true;
                options.rates = value()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<Vec<f64>, _>>()?;
                options.rates.retain(|&r| r > 0.0);
            }
            "--unpaired" => options.paired = false,
            "--no-saturated" => options.saturated = false,
            "--modes" => {
                let modes: Vec<String> = value()?.split(',').map(str::to_owned).collect();
                for mode in &modes {
                    if !all_load_modes().any(|m| m == mode) {
                        return Err(format!("unknown mode {mode:?}\n{USAGE}").into());
                    }
                }
                modes_given = Some(modes);
            }
            "--suite" => {
                let name = value()?;
                let (_, modes) = LOAD_SUITES
                    .iter()
                    .find(|(n, _)| *n == name)
                    .ok_or_else(|| format!("unknown suite {name:?}\n{USAGE}"))?;
                suite = Some(modes);
            }
            "--namespace" => options.namespace = value()?,
            "--no-store-cpu" => options.store_cpu = false,
            "--keep-all" => options.keep_all = true,
            "--server-cpu" => options.server_cpu = value()?.parse()?,
            "--gen-cpu" => options.gen_cpu = value()?.parse()?,
            "--raw" => options.raw = Some(value()?.into()),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}").into()),
        }
    }
    let custom = suite.is_some() || modes_given.is_some();
    if let Some(modes) = modes_given {
        options.modes = modes;
    } else if let Some(modes) = suite {
        options.modes = modes.iter().map(|m| (*m).to_owned()).collect();
    }
    // Over a shared store throughput is the measure: modes over one alone run the saturated
    // phase only, unless rates are asked for.
    if !rates_given
        && options
            .modes
            .iter()
            .all(|m| DISTRIBUTED_MODES.contains(&m.as_str()))
    {
        options.rates.clear();
    }
    if custom {
        let modes = &mut options.modes;
        if !modes.iter().any(|m| m == "hyper") {
            modes.insert(0, "hyper".to_owned());
        }
        if modes.iter().any(|m| m.starts_with("actix")) && !modes.iter().any(|m| m == "actix") {
            modes.push("actix".to_owned());
        }
    }
    if options.rounds == 0 {
        return Err("--rounds must be at least 1".into());
    }
    if !options.saturated && options.rates.is_empty() {
        return Err("nothing to run: --no-saturated and no rate".into());
    }
    Ok(options)
}

/// The baseline a mode is compared with besides bare hyper: its own server without sessions.
fn own_baseline(mode: &str) -> &'static str {
    if mode.starts_with("actix") {
        "actix"
    } else {
        "hyper"
    }
}

/// Modes whose handler does the read-modify-write of a counter.
fn is_rmw(mode: &str) -> bool {
    matches!(
        mode,
        "fastsession-cookie"
            | "fastsession-memory"
            | "tower-sessions"
            | "actix-session"
            | "floor-cookie"
    ) || DISTRIBUTED_MODES.contains(&mode)
}

/// A saturated slice over Redis is left out of the tables when other processes kept this
/// many CPUs busy on average over its window.
const OTHERS_LIMIT: f64 = 0.25;

/// Modes whose sessions live in Redis.
fn is_redis(mode: &str) -> bool {
    mode.ends_with("-redis")
}

/// One slice's `RESULT` line, as numbers. In a paired phase, the reference server's values
/// are added with a `ref_` prefix.
type Run = BTreeMap<String, f64>;

/// A child process that is killed (by its own pid) when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The command for `program`, pinned to `cpu` with taskset when it is there.
fn pinned(program: &Path, cpu: usize, taskset: bool) -> Command {
    if taskset {
        let mut command = Command::new("taskset");
        command.arg("-c").arg(cpu.to_string()).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// A running `load-server`.
struct Server {
    guard: Guard,
    addr: String,
}

/// Starts `load-server MODE 127.0.0.1:0` pinned to the server CPU.
fn start_server(
    bin: &Path,
    options: &Options,
    taskset: bool,
    mode: &str,
) -> Result<Server, BoxError> {
    // taskset execs the server, so the child's pid is the server's.
    let mut guard = Guard(
        pinned(&bin.join("load-server"), options.server_cpu, taskset)
            .args([mode, "127.0.0.1:0", "--exit-on-stdin-eof"])
            .args(["--namespace", &options.namespace])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting load-server: {e}"))?,
    );
    let stdout = guard.0.stdout.take().ok_or("no server stdout")?;
    let mut addr = String::new();
    BufReader::new(stdout).read_line(&mut addr)?;
    let addr = addr.trim().to_owned();
    if addr.is_empty() {
        // It exited before it was ready (its message is on stderr): why?
        let status = guard.0.wait()?;
        return Err(format!("load-server {mode} printed no address ({status})").into());
    }
    Ok(Server { guard, addr })
}

/// Deletes what the modes over a shared store left there (`load-server --cleanup`).
fn cleanup(bin: &Path, options: &Options) {
    for mode in options
        .modes
        .iter()
        .filter(|m| DISTRIBUTED_MODES.contains(&m.as_str()))
    {
        let status = Command::new(bin.join("load-server"))
            .args(["--cleanup", mode, &options.namespace])
            .status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!(
                "load-bench: the clean-up of {mode} (namespace {}) failed",
                options.namespace
            );
        }
    }
}

/// The pid of the Redis server, from `INFO server` over a plain connection (RESP by hand:
/// one inline command, one bulk reply), if it can be read and its CPU time measured here.
fn redis_pid() -> Result<u32, BoxError> {
    use std::io::{Read, Write};
    let url = std::env::var("FASTSESSION_BENCH_REDIS_URL")
        .unwrap_or_else(|_| fastsession_benches::REDIS_URL.to_owned());
    let rest = url.strip_prefix("redis://").ok_or("not a redis:// URL")?;
    let host = rest.split('/').next().unwrap_or(rest);
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let mut stream = std::net::TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(b"INFO server\r\n")?;
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    reader.read_line(&mut head)?;
    let len: usize = head
        .trim()
        .strip_prefix('$')
        .ok_or_else(|| format!("INFO answered {:?}", head.trim()))?
        .parse()?;
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    let body = String::from_utf8(body)?;
    let pid: u32 = body
        .lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .ok_or("no process_id in INFO")?
        .trim()
        .parse()?;
    std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .map_err(|e| format!("redis-server pid {pid}: {e} (not on this machine?)"))?;
    Ok(pid)
}

/// Starts `load-gen` against `server` for one slice.
fn spawn_generator(
    bin: &Path,
    options: &Options,
    taskset: bool,
    mode: &str,
    server: &Server,
    rate: Option<f64>,
) -> Result<Child, BoxError> {
    let mut generator = pinned(&bin.join("load-gen"), options.gen_cpu, taskset);
    generator
        .args(["--addr", &server.addr])
        .args(["--server-pid", &server.guard.0.id().to_string()])
        .args(["--connections", &options.connections.to_string()])
        .args(["--warmup", &options.warmup.to_string()])
        .args(["--duration", &options.duration.to_string()]);
    if let Some(rate) = rate {
        generator.args(["--rate", &rate.to_string()]);
    }
    if is_rmw(mode) {
        generator.arg("--counter");
    }
    if let (true, Some(pid)) = (is_redis(mode), options.store_pid) {
        generator.args(["--store-pid", &pid.to_string()]);
    }
    Ok(generator
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("starting load-gen: {e}"))?)
}

/// Waits for a generator and parses its `RESULT` line.
fn finish_generator(generator: Child, mode: &str) -> Result<(Run, String), BoxError> {
    let output = generator.wait_with_output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("RESULT "))
        .ok_or_else(|| format!("load-gen printed no RESULT for {mode}:\n{stdout}"))?;
    if !output.status.success() {
        return Err(format!("load-gen failed for {mode}: {line}").into());
    }
    let mut run = Run::new();
    for pair in line.split_ascii_whitespace().skip(1) {
        let (key, value) = pair.split_once('=').ok_or("malformed RESULT")?;
        run.insert(key.to_owned(), value.parse()?);
    }
    if !run.contains_key("server_cpu_us") {
        return Err("load-gen measured no server CPU time".into());
    }
    Ok((run, line.to_owned()))
}

fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| {
            s.split_ascii_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "?".to_owned())
}

/// How a phase loads the servers.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// One server at a time, as fast as it answers.
    Saturated,
    /// One server at a time, at a fixed rate.
    Rate(f64),
    /// The mode's server and the reference hyper server at once, each at a fixed rate.
    Paired(f64),
}

impl Kind {
    fn name(self) -> String {
        match self {
            Kind::Saturated => "saturated".to_owned(),
            Kind::Rate(rate) => format!("rate-{rate}"),
            Kind::Paired(rate) => format!("paired-{rate}"),
        }
    }

    fn rate(self) -> Option<f64> {
        match self {
            Kind::Saturated => None,
            Kind::Rate(rate) | Kind::Paired(rate) => Some(rate),
        }
    }
}

/// The slices of one phase: `rounds[round][mode]`.
type Rounds = Vec<BTreeMap<String, Run>>;

/// All servers of a run: one per mode, and the reference for paired phases.
struct Servers {
    modes: BTreeMap<String, Server>,
    reference: Option<Server>,
}

/// One slice of `mode` in a phase of `kind`.
fn run_slice(
    bin: &Path,
    options: &Options,
    taskset: bool,
    servers: &Servers,
    kind: Kind,
    mode: &str,
    round: usize,
) -> Result<(Run, String), BoxError> {
    let server = servers.modes.get(mode).ok_or("no server for a mode")?;
    let Kind::Paired(rate) = kind else {
        let generator = spawn_generator(bin, options, taskset, mode, server, kind.rate())?;
        return finish_generator(generator, mode);
    };
    let reference = servers.reference.as_ref().ok_or("no reference server")?;
    // Alternate which generator starts first.
    let (run, line, reference_run) = if round.is_multiple_of(2) {
        let first = spawn_generator(bin, options, taskset, mode, server, Some(rate))?;
        let second = spawn_generator(bin, options, taskset, "hyper", reference, Some(rate))?;
        let (run, line) = finish_generator(first, mode)?;
        (run, line, finish_generator(second, "hyper (reference)")?.0)
    } else {
        let first = spawn_generator(bin, options, taskset, "hyper", reference, Some(rate))?;
        let second = spawn_generator(bin, options, taskset, mode, server, Some(rate))?;
        let reference_run = finish_generator(first, "hyper (reference)")?.0;
        let (run, line) = finish_generator(second, mode)?;
        (run, line, reference_run)
    };
    let mut run = run;
    let mut line = line;
    for (key, value) in reference_run {
        line.push_str(&format!(" ref_{key}={value}"));
        run.insert(format!("ref_{key}"), value);
    }
    Ok((run, line))
}

/// Runs every phase for every round.
fn run_rounds(
    bin: &Path,
    options: &Options,
    taskset: bool,
    servers: &Servers,
    phases: &mut [(Kind, Rounds)],
    raw: &mut Vec<String>,
) -> Result<(), BoxError> {
    let n = options.modes.len();
    for round in 0..options.rounds {
        for (kind, rounds) in phases.iter_mut() {
            let name = kind.name();
            let mut runs = BTreeMap::new();
            for i in 0..n {
                let mode = &options.modes[(i + round) % n];
                let (run, line) = run_slice(bin, options, taskset, servers, *kind, mode, round)?;
                let reference = run
                    .get("ref_server_cpu_us")
                    .map(|r| format!(" (reference {r:.2}, ratio {:.3})", run["server_cpu_us"] / r))
                    .unwrap_or_default();
                let store = run
                    .get("store_util")
                    .map(|u| format!("  store {:>3.0}%", u * 100.0))
                    .unwrap_or_default();
                eprintln!(
                    "[round {}/{}, {name}] {mode:<25} {:>7.0} req/s {:>6.2} µs CPU/req{reference}  server {:>3.0}%  gen {:>3.0}%{store}  others {:.2} CPUs  p50 {:>7.1} µs  (load {})",
                    round + 1,
                    options.rounds,
                    run["rps"],
                    run["server_cpu_us"],
                    run["server_util"] * 100.0,
                    run["gen_util"] * 100.0,
                    run.get("others_cpus").copied().unwrap_or(f64::NAN),
                    run["p50_us"],
                    load_average()
                );
                // A slice that fell short of its fixed rate did not compare at equal load; a
                // saturated slice where neither the server nor the generator kept its CPU
                // busy measured something else taking the CPUs. Both stay in the raw file
                // only. Over Redis a server may wait on round trips without being disturbed,
                // so there the rule is other processes' CPU time over the window; over
                // PostgreSQL the limit is the database (commits), and its backends are other
                // processes: no rule there.
                let excluded = match kind.rate() {
                    Some(rate) => {
                        run["rps"] < 0.98 * rate
                            || run.get("ref_rps").is_some_and(|&r| r < 0.98 * rate)
                    }
                    None if mode.ends_with("-postgres") => false,
                    None if is_redis(mode) && run.contains_key("others_cpus") => {
                        run["others_cpus"] > OTHERS_LIMIT
                    }
                    None => run["server_util"] < 0.9 && run["gen_util"] < 0.9,
                };
                let flag = if excluded { " excluded=1" } else { "" };
                raw.push(format!(
                    "phase={name} round={} mode={mode} {line}{flag}",
                    round + 1
                ));
                if excluded && !options.keep_all {
                    eprintln!("  (short of the rate, or neither CPU busy: left out of the tables)");
                } else {
                    runs.insert(mode.clone(), run);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            rounds.push(runs);
        }
    }
    Ok(())
}

/// The median over rounds of `f(round)`, skipping rounds where it is not defined.
fn median_of(rounds: &Rounds, f: impl Fn(&BTreeMap<String, Run>) -> Option<f64>) -> f64 {
    let mut values: Vec<f64> = rounds.iter().filter_map(f).collect();
    median(&mut values)
}

/// The lowest and highest of `f(round)`.
fn range_of(rounds: &Rounds, f: impl Fn(&BTreeMap<String, Run>) -> Option<f64>) -> (f64, f64) {
    rounds
        .iter()
        .filter_map(f)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        })
}

/// In a paired phase: `mode`'s CPU time per request divided by the reference server's,
/// measured at the same time.
fn reference_ratio(runs: &BTreeMap<String, Run>, mode: &str) -> Option<f64> {
    let run = runs.get(mode)?;
    Some(run.get("server_cpu_us")? / run.get("ref_server_cpu_us")?)
}

/// `mode`'s CPU time per request divided by bare hyper's, in one round. In a paired phase,
/// both go through the reference measured at the same time as each: (mode ÷ reference) ÷
/// (hyper ÷ reference), which takes out the small difference between the reference and
/// the `hyper` server that the A/A pair shows; otherwise the `hyper` slice of the round.
fn cpu_ratio(runs: &BTreeMap<String, Run>, mode: &str) -> Option<f64> {
    match reference_ratio(runs, mode) {
        Some(ratio) => Some(ratio / reference_ratio(runs, "hyper")?),
        None => value_ratio(runs, mode, "hyper", "server_cpu_us"),
    }
}

fn value_ratio(runs: &BTreeMap<String, Run>, mode: &str, base: &str, key: &str) -> Option<f64> {
    Some(runs.get(mode)?.get(key)? / runs.get(base)?.get(key)?)
}

/// `median (lowest–highest)` of `f` over the rounds, or `–`.
fn summary(
    rounds: &Rounds,
    digits: usize,
    f: impl Fn(&BTreeMap<String, Run>) -> Option<f64> + Copy,
) -> String {
    let median = median_of(rounds, f);
    if !median.is_finite() {
        return "–".to_owned();
    }
    let (lo, hi) = range_of(rounds, f);
    format!("{median:.digits$} ({lo:.digits$}–{hi:.digits$})")
}

/// One phase's table. `n` is the number of rounds in the medians (excluded slices are left
/// out, see `run_rounds`).
fn print_table(title: &str, options: &Options, rounds: &Rounds, rate: Option<f64>) {
    // The store's columns only when a store's server was measured (Redis modes).
    let has_store = rounds
        .iter()
        .any(|r| r.values().any(|run| run.contains_key("store_cpu_us")));
    println!("\n### {title}\n");
    println!(
        "| mode | n | req/s | req/s ÷ hyper | server CPU µs/req (range) | CPU/req ÷ hyper (range) | CPU/req ÷ reference (range) | CPU/req ÷ own base | server CPU % | gen CPU % | p50 µs | p99 µs |{}",
        if has_store {
            " store CPU µs/req (range) | server + store µs/req | store CPU % |"
        } else {
            ""
        }
    );
    println!(
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |{}",
        if has_store {
            " ---: | ---: | ---: |"
        } else {
            ""
        }
    );
    for mode in &options.modes {
        let get = |key: &'static str| median_of(rounds, |r| r.get(mode)?.get(key).copied());
        let rps_ratio = if rate.is_some() {
            "–".to_owned()
        } else {
            format!(
                "{:.3}",
                median_of(rounds, |r| value_ratio(r, mode, "hyper", "rps"))
            )
        };
        let base = own_baseline(mode);
        let own = if base == "hyper" {
            "–".to_owned()
        } else {
            let own = median_of(rounds, |r| Some(cpu_ratio(r, mode)? / cpu_ratio(r, base)?));
            format!("{own:.3} ({base})")
        };
        let n = rounds.iter().filter(|r| r.contains_key(mode)).count();
        let store = if !has_store {
            String::new()
        } else if get("store_cpu_us").is_finite() {
            format!(
                " {} | {:.2} | {:.0} |",
                summary(rounds, 2, |r| r.get(mode)?.get("store_cpu_us").copied()),
                median_of(rounds, |r| {
                    let run = r.get(mode)?;
                    Some(run.get("server_cpu_us")? + run.get("store_cpu_us")?)
                }),
                get("store_util") * 100.0
            )
        } else {
            " – | – | – |".to_owned()
        };
        println!(
            "| {mode} | {n} | {:.0} | {rps_ratio} | {} | {} | {} | {own} | {:.0} | {:.0} | {:.0} | {:.0} |{store}",
            get("rps"),
            summary(rounds, 2, |r| r.get(mode)?.get("server_cpu_us").copied()),
            summary(rounds, 3, |r| cpu_ratio(r, mode)),
            summary(rounds, 3, |r| reference_ratio(r, mode)),
            get("server_util") * 100.0,
            get("gen_util") * 100.0,
            get("p50_us"),
            get("p99_us"),
        );
    }
}

/// Lines saying whether the targets (BENCHMARKS.md, "Targets") were met in this phase.
fn print_targets(title: &str, rounds: &Rounds, saturated: bool) {
    let cpu = |mode: &str| median_of(rounds, |r| cpu_ratio(r, mode));
    let rps = |mode: &str| median_of(rounds, |r| r.get(mode)?.get("rps").copied());
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!("\nTargets, {title}:");
    let untouched = cpu("fastsession-untouched");
    if untouched.is_finite() {
        println!(
            "  untouched ≤ 1.03 × hyper CPU/req: {untouched:.3} ({:+.1}%) {}",
            (untouched - 1.0) * 100.0,
            verdict(untouched <= 1.03)
        );
    }
    // Over Redis, at least 1.5 × the throughput of the better peer.
    let peers = ["tower-sessions-redis", "actix-session-redis"].map(rps);
    if saturated && peers.iter().any(|p| p.is_finite()) {
        let better = peers
            .iter()
            .copied()
            .filter(|p| p.is_finite())
            .fold(0.0, f64::max);
        let ours = rps("fastsession-redis");
        if ours.is_finite() {
            println!(
                "  fastsession-redis ≥ 1.5 × the better Redis peer: {ours:.0} vs {better:.0} req/s ({:.3}×) {}",
                ours / better,
                verdict(ours >= 1.5 * better)
            );
        } else {
            println!(
                "  Redis peers: the better does {better:.0} req/s (fastsession-redis not run)"
            );
        }
    }
    let cookie = cpu("fastsession-cookie");
    if cookie.is_finite() {
        println!(
            "  cookie RMW ≤ 1.20 × hyper CPU/req: {cookie:.3} ({:+.1}%) {}",
            (cookie - 1.0) * 100.0,
            verdict(cookie <= 1.20)
        );
        for peer in ["tower-sessions", "actix-session"] {
            let peer_cpu = cpu(peer);
            if peer_cpu.is_finite() {
                println!("  {peer} RMW CPU/req ÷ hyper: {peer_cpu:.3}");
            }
        }
        if saturated {
            for peer in ["tower-sessions", "actix-session"] {
                let (ours, theirs) = (rps("fastsession-cookie"), rps(peer));
                if theirs.is_finite() {
                    println!(
                        "  cookie RMW throughput > {peer}: {ours:.0} vs {theirs:.0} req/s ({:.3}×) {}",
                        ours / theirs,
                        verdict(ours > theirs)
                    );
                }
            }
        }
    }
}

fn main() -> Result<(), BoxError> {
    let mut options = parse_options()?;
    let exe = std::env::current_exe()?;
    let bin = exe
        .parent()
        .ok_or("no directory for load-bench")?
        .to_owned();
    for needed in ["load-server", "load-gen"] {
        if !bin.join(needed).exists() {
            return Err(format!(
                "{} not found: build all three with `cargo build --release -p fastsession-benches --bins`",
                bin.join(needed).display()
            )
            .into());
        }
    }
    let taskset = Command::new("taskset")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !taskset {
        eprintln!("load-bench: taskset not found, servers and generators are not pinned");
    }
    if options.store_cpu && options.modes.iter().any(|m| is_redis(m)) {
        match redis_pid() {
            Ok(pid) => options.store_pid = Some(pid),
            Err(error) => {
                eprintln!("load-bench: not measuring redis-server's CPU time: {error}");
            }
        }
    }
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let started = load_average();
    eprintln!(
        "load-bench: {} modes × {} rounds, slices of {} s (+{} s warm-up), {} connections, {cpus} CPUs, servers on CPU {}, generators on CPU {}; load average {started}",
        options.modes.len(),
        options.rounds,
        options.duration,
        options.warmup,
        options.connections,
        options.server_cpu,
        options.gen_cpu
    );

    let mut phases: Vec<(Kind, Rounds)> = Vec::new();
    if options.saturated {
        phases.push((Kind::Saturated, Vec::new()));
    }
    for &rate in &options.rates {
        let kind = if options.paired {
            Kind::Paired(rate)
        } else {
            Kind::Rate(rate)
        };
        phases.push((kind, Vec::new()));
    }
    // One server per mode for the whole run, all on the server CPU.
    let mut servers = Servers {
        modes: BTreeMap::new(),
        reference: None,
    };
    for mode in &options.modes {
        match start_server(&bin, &options, taskset, mode) {
            Ok(server) => {
                servers.modes.insert(mode.clone(), server);
            }
            Err(error) => {
                drop(servers);
                cleanup(&bin, &options);
                return Err(format!("starting the {mode} server: {error}").into());
            }
        }
    }
    if phases
        .iter()
        .any(|(kind, _)| matches!(kind, Kind::Paired(_)))
    {
        match start_server(&bin, &options, taskset, "hyper") {
            Ok(server) => servers.reference = Some(server),
            Err(error) => {
                drop(servers);
                cleanup(&bin, &options);
                return Err(error);
            }
        }
    }
    let mut raw = Vec::new();
    let result = run_rounds(&bin, &options, taskset, &servers, &mut phases, &mut raw);
    drop(servers);
    cleanup(&bin, &options);
    if let Some(path) = &options.raw {
        std::fs::write(path, raw.join("\n") + "\n")?;
    }
    result?;

    println!(
        "\n{} rounds; slices of {} s measured (+{} s warm-up) per mode and phase, {} connections per generator; medians over rounds. Load average before {started}, after {}.",
        options.rounds,
        options.duration,
        options.warmup,
        options.connections,
        load_average()
    );
    for (kind, rounds) in &phases {
        let title = match kind {
            Kind::Saturated => "Saturated, one server at a time".to_owned(),
            Kind::Rate(rate) => format!("Fixed rate, one server at a time: {rate} requests/s"),
            Kind::Paired(rate) => format!(
                "Fixed rate, paired with the reference hyper server: {rate} requests/s each"
            ),
        };
        print_table(&title, &options, rounds, kind.rate());
    }
    for (kind, rounds) in &phases {
        print_targets(&kind.name(), rounds, *kind == Kind::Saturated);
    }
    Ok(())
}
