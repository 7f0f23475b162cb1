//! What the `virt` crate does not wrap (or wraps unsoundly), on `virt-sys`
//! directly, in one place: the event loop, domain events, job stats,
//! abort, post-copy, node CPU times and dirty-rate measurement.

use std::collections::HashMap;

use super::measure::Sample;
use std::ffi::{CStr, c_void};
use std::os::raw::{c_char, c_int};
use std::ptr;
use std::sync::{Arc, OnceLock};

use virt::connect::Connect;
use virt::domain::{Domain, JobStats};
use virt::error::Error;
use virt::sys;

/// Starts libvirt's default event loop on its own thread (once), and stops
/// libvirt from printing errors on stderr (it would corrupt the TUI).
pub fn init() -> Result<(), String> {
    static INIT: OnceLock<Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| {
        virt::error::clear_error_callback();
        if unsafe { sys::virEventRegisterDefaultImpl() } < 0 {
            return Err(format!(
                "cannot start libvirt's event loop: {}",
                Error::last_error()
            ));
        }
        std::thread::Builder::new()
            .name("libvirt-events".into())
            .spawn(|| {
                loop {
                    if unsafe { sys::virEventRunDefaultImpl() } < 0 {
                        std::thread::sleep(std::time::Duration::from_millis(100));
                    }
                }
            })
            .map_err(|e| format!("cannot start libvirt's event thread: {e}"))?;
        Ok(())
    })
    .clone()
}

fn check(r: c_int) -> Result<c_int, Error> {
    if r < 0 {
        Err(Error::last_error())
    } else {
        Ok(r)
    }
}

/// Job statistics; safe when no job runs (`virt`'s `job_stats` builds a Vec
/// from a null pointer then). `completed` asks for the last finished job.
pub fn job_stats(dom: &Domain, completed: bool) -> Result<JobStats, Error> {
    // A completed job's statistics are kept for the next reader (another
    // vmshift, virsh): libvirt deletes them on a read without KEEP.
    let flags = if completed {
        sys::VIR_DOMAIN_JOB_STATS_COMPLETED | sys::VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED
    } else {
        0
    };
    let mut kind: c_int = 0;
    let mut params: sys::virTypedParameterPtr = ptr::null_mut();
    let mut n: c_int = 0;
    check(unsafe {
        sys::virDomainGetJobStats(dom.as_ptr(), &mut kind, &mut params, &mut n, flags)
    })?;
    if params.is_null() || n <= 0 {
        return Ok(JobStats {
            r#type: kind,
            ..Default::default()
        });
    }
    // Copy the parameters into Rust-owned memory, read them, then free
    // libvirt's allocation with libvirt's own function.
    let copy = unsafe { std::slice::from_raw_parts(params, n as usize) }.to_vec();
    let stats = JobStats::from((kind, copy));
    unsafe { sys::virTypedParamsFree(params, n) };
    Ok(stats)
}

pub fn abort_job(dom: &Domain) -> Result<(), Error> {
    check(unsafe { sys::virDomainAbortJob(dom.as_ptr()) }).map(|_| ())
}

pub fn start_postcopy(dom: &Domain) -> Result<(), Error> {
    check(unsafe { sys::virDomainMigrateStartPostCopy(dom.as_ptr(), 0) }).map(|_| ())
}

/// Starts a block copy of `disk` (target dev) to the disk described by
/// `dest_xml` (libvirt creates the file); the job mirrors until pivoted.
pub fn block_copy(dom: &Domain, disk: &str, dest_xml: &str) -> Result<(), Error> {
    let disk = std::ffi::CString::new(disk).expect("no NUL in a disk name");
    let xml = std::ffi::CString::new(dest_xml).expect("no NUL in XML");
    check(unsafe {
        sys::virDomainBlockCopy(
            dom.as_ptr(),
            disk.as_ptr(),
            xml.as_ptr(),
            ptr::null_mut(),
            0,
            // A persistent domain's copy must be a transient job (it does
            // not survive a daemon restart); the definition is updated
            // after the pivot.
            sys::VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB,
        )
    })
    .map(|_| ())
}

/// (copied, total) bytes of `disk`'s block job; `None` when it has none.
pub fn block_job(dom: &Domain, disk: &str) -> Result<Option<(u64, u64)>, Error> {
    let disk = std::ffi::CString::new(disk).expect("no NUL in a disk name");
    let mut info = sys::virDomainBlockJobInfo {
        type_: 0,
        bandwidth: 0,
        cur: 0,
        end: 0,
    };
    let r =
        check(unsafe { sys::virDomainGetBlockJobInfo(dom.as_ptr(), disk.as_ptr(), &mut info, 0) })?;
    Ok((r > 0).then_some((info.cur, info.end)))
}

/// Ends `disk`'s block job: `pivot` switches the VM to the copy, else the
/// copy is dropped and the VM stays on its disk.
pub fn block_job_abort(dom: &Domain, disk: &str, pivot: bool) -> Result<(), Error> {
    let disk = std::ffi::CString::new(disk).expect("no NUL in a disk name");
    let flags = if pivot {
        sys::VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT
    } else {
        0
    };
    check(unsafe { sys::virDomainBlockJobAbort(dom.as_ptr(), disk.as_ptr(), flags) }).map(|_| ())
}

/// (busy, total) CPU nanoseconds of the whole host since boot.
pub fn node_cpu_times(conn: &Connect) -> Result<(u64, u64), Error> {
    let mut n: c_int = 0;
    check(unsafe {
        sys::virNodeGetCPUStats(
            conn.as_ptr(),
            sys::VIR_NODE_CPU_STATS_ALL_CPUS,
            ptr::null_mut(),
            &mut n,
            0,
        )
    })?;
    if n <= 0 {
        return Ok((0, 0));
    }
    let mut params = vec![
        sys::virNodeCPUStats {
            field: [0; 80],
            value: 0
        };
        n as usize
    ];
    check(unsafe {
        sys::virNodeGetCPUStats(
            conn.as_ptr(),
            sys::VIR_NODE_CPU_STATS_ALL_CPUS,
            params.as_mut_ptr(),
            &mut n,
            0,
        )
    })?;
    let (mut busy, mut total) = (0u64, 0u64);
    for p in &params[..n as usize] {
        let name = unsafe { CStr::from_ptr(p.field.as_ptr()) }.to_string_lossy();
        match name.as_ref() {
            "idle" | "iowait" => total += p.value,
            "kernel" | "user" => {
                busy += p.value;
                total += p.value;
            }
            _ => {}
        }
    }
    Ok((busy, total))
}

/// Starts a dirty-rate measurement of `seconds` in page-sampling mode, the
/// only mode vmshift uses (see [`super::measure`]).
pub fn start_dirty_rate_calc(dom: &Domain, seconds: i32) -> Result<(), Error> {
    check(unsafe {
        sys::virDomainStartDirtyRateCalc(dom.as_ptr(), seconds, super::measure::SAFE_CALC_FLAGS)
    })
    .map(|_| ())
}

/// The last finished dirty-rate measurement per domain name.
pub fn dirty_rates(doms: &[Domain]) -> HashMap<String, Sample> {
    let mut out = HashMap::new();
    if doms.is_empty() {
        return out;
    }
    let mut ptrs: Vec<sys::virDomainPtr> = doms.iter().map(|d| unsafe { d.as_ptr() }).collect();
    ptrs.push(ptr::null_mut());
    let mut records: *mut sys::virDomainStatsRecordPtr = ptr::null_mut();
    let n = unsafe {
        sys::virDomainListGetStats(
            ptrs.as_mut_ptr(),
            sys::VIR_DOMAIN_STATS_DIRTYRATE,
            &mut records,
            0,
        )
    };
    if n <= 0 || records.is_null() {
        return out;
    }
    for i in 0..n as usize {
        let rec = unsafe { *records.add(i) };
        if rec.is_null() {
            continue;
        }
        let rec = unsafe { &*rec };
        let name = unsafe { c_str(sys::virDomainGetName(rec.dom)) };
        let params = unsafe { std::slice::from_raw_parts(rec.params, rec.nparams.max(0) as usize) };
        let (mut status, mut mbps, mut start, mut period) = (None, None, 0, 1);
        for p in params {
            let field = unsafe { CStr::from_ptr(p.field.as_ptr()) };
            if field == sys::VIR_DOMAIN_STATS_DIRTYRATE_CALC_STATUS {
                status = Some(unsafe { p.value.i });
            } else if field == sys::VIR_DOMAIN_STATS_DIRTYRATE_MEGABYTES_PER_SECOND {
                mbps = Some(unsafe { p.value.l });
            } else if field == sys::VIR_DOMAIN_STATS_DIRTYRATE_CALC_START_TIME {
                start = unsafe { p.value.l };
            } else if field == sys::VIR_DOMAIN_STATS_DIRTYRATE_CALC_PERIOD {
                period = unsafe { p.value.i };
            }
        }
        // calc_status 2 = measured.
        if let (Some(2), Some(m)) = (status, mbps) {
            out.insert(
                name,
                Sample {
                    start,
                    period_s: period.max(1) as f64,
                    bps: m.max(0) as f64 * 1e6,
                },
            );
        }
    }
    unsafe { sys::virDomainStatsRecordListFree(records) };
    out
}

unsafe fn c_str(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

/// A domain event, with the domain's name.
#[derive(Debug, Clone)]
pub enum Event {
    Lifecycle {
        dom: String,
        event: i32,
        detail: i32,
    },
    Iteration {
        dom: String,
        iteration: i32,
    },
    JobCompleted {
        dom: String,
        stats: Box<JobStats>,
    },
}

pub type Sink = Arc<dyn Fn(Event) + Send + Sync>;

unsafe extern "C" fn free_sink(opaque: *mut c_void) {
    if !opaque.is_null() {
        drop(unsafe { Box::from_raw(opaque as *mut Sink) });
    }
}

fn deliver(opaque: *mut c_void, make: impl FnOnce() -> Event) {
    // Never unwind into C.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let sink = unsafe { &*(opaque as *const Sink) };
        sink(make());
    }));
}

unsafe extern "C" fn on_lifecycle(
    _c: sys::virConnectPtr,
    dom: sys::virDomainPtr,
    event: c_int,
    detail: c_int,
    opaque: *mut c_void,
) -> c_int {
    let name = unsafe { c_str(sys::virDomainGetName(dom)) };
    deliver(opaque, || Event::Lifecycle {
        dom: name,
        event,
        detail,
    });
    0
}

unsafe extern "C" fn on_iteration(
    _c: sys::virConnectPtr,
    dom: sys::virDomainPtr,
    iteration: c_int,
    opaque: *mut c_void,
) {
    let name = unsafe { c_str(sys::virDomainGetName(dom)) };
    deliver(opaque, || Event::Iteration {
        dom: name,
        iteration,
    });
}

unsafe extern "C" fn on_job_completed(
    _c: sys::virConnectPtr,
    dom: sys::virDomainPtr,
    params: sys::virTypedParameterPtr,
    n: c_int,
    opaque: *mut c_void,
) {
    let name = unsafe { c_str(sys::virDomainGetName(dom)) };
    // libvirt owns and frees `params` after the callback: copy them.
    let copy = if params.is_null() || n <= 0 {
        Vec::new()
    } else {
        unsafe { std::slice::from_raw_parts(params, n as usize) }.to_vec()
    };
    let stats = JobStats::from((sys::VIR_DOMAIN_JOB_COMPLETED as i32, copy));
    deliver(opaque, || Event::JobCompleted {
        dom: name,
        stats: Box::new(stats),
    });
}

/// Registers lifecycle, migration-iteration and job-completed events of all
/// domains on `conn`; returns the callback ids.
pub fn register_events(conn: &Connect, sink: Sink) -> Result<Vec<c_int>, Error> {
    type Lifecycle = unsafe extern "C" fn(
        sys::virConnectPtr,
        sys::virDomainPtr,
        c_int,
        c_int,
        *mut c_void,
    ) -> c_int;
    type Iteration =
        unsafe extern "C" fn(sys::virConnectPtr, sys::virDomainPtr, c_int, *mut c_void);
    type Completed = unsafe extern "C" fn(
        sys::virConnectPtr,
        sys::virDomainPtr,
        sys::virTypedParameterPtr,
        c_int,
        *mut c_void,
    );
    type Plain = unsafe extern "C" fn(sys::virConnectPtr, sys::virDomainPtr, *mut c_void);
    // libvirt calls each through the generic type; the event id says which.
    let callbacks: [(c_int, sys::virConnectDomainEventGenericCallback); 3] = unsafe {
        [
            (
                sys::VIR_DOMAIN_EVENT_ID_LIFECYCLE as c_int,
                Some(std::mem::transmute::<Lifecycle, Plain>(on_lifecycle)),
            ),
            (
                sys::VIR_DOMAIN_EVENT_ID_MIGRATION_ITERATION as c_int,
                Some(std::mem::transmute::<Iteration, Plain>(on_iteration)),
            ),
            (
                sys::VIR_DOMAIN_EVENT_ID_JOB_COMPLETED as c_int,
                Some(std::mem::transmute::<Completed, Plain>(on_job_completed)),
            ),
        ]
    };
    let mut ids = Vec::new();
    for (id, cb) in callbacks {
        let opaque = Box::into_raw(Box::new(sink.clone())) as *mut c_void;
        let r = unsafe {
            sys::virConnectDomainEventRegisterAny(
                conn.as_ptr(),
                ptr::null_mut(),
                id,
                cb,
                opaque,
                Some(free_sink),
            )
        };
        if r < 0 {
            let e = Error::last_error();
            unsafe { free_sink(opaque) };
            deregister_events(conn, &ids);
            return Err(e);
        }
        ids.push(r);
    }
    Ok(ids)
}

pub fn deregister_events(conn: &Connect, ids: &[c_int]) {
    for id in ids {
        unsafe { sys::virConnectDomainEventDeregisterAny(conn.as_ptr(), *id) };
    }
}

/// (state, reason) as libvirt's raw numbers.
pub fn state(dom: &Domain) -> Result<(u32, i32), Error> {
    let (mut state, mut reason): (c_int, c_int) = (-1, -1);
    check(unsafe { sys::virDomainGetState(dom.as_ptr(), &mut state, &mut reason, 0) })?;
    Ok((state as u32, reason))
}
