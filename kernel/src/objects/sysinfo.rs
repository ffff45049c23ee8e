//! `SystemInfo`: uptime, CPUs, memory and the live processes, and the
//! manifest's message of the day. The process list is copied out of the
//! registry ([`crate::proc::registry`]) under its lock, bounded, and each
//! process is read after the lock is released.

use super::{names, serve, Call, KernelObject, Outcome};
use alloc::string::String;
use capnp::message::Builder;
use capos_caps::ledger::Resource;
use capos_caps::schema::capos_capnp::system_info;

/// Most processes one summary lists.
pub const MAX_LISTED: usize = 256;

/// The default message of the day.
pub const DEFAULT_MOTD: &str = "Welcome to capOS.";

static MOTD: spin::Once<String> = spin::Once::new();

/// Sets the message of the day (from the manifest; empty: the default).
pub fn set_motd(text: &str) {
    MOTD.call_once(|| {
        if text.is_empty() {
            String::from(DEFAULT_MOTD)
        } else {
            String::from(text)
        }
    });
}

/// Shared: no state of its own.
pub struct SystemInfo;

names!(SystemInfo, system_info, "system-info");

impl KernelObject for SystemInfo {
    fn call(&self, cx: &mut Call<'_>) -> Outcome {
        serve!(system_info, self, cx)
    }
}

impl<'a> capos_caps::api::system_info::Server<Call<'a>> for SystemInfo {
    fn summary(&self, cx: &mut Call<'a>) -> Outcome {
        let procs = crate::proc::registry::live(MAX_LISTED);
        let frames = crate::mem::frame::stats();
        let mut out = Builder::new_default();
        let mut r = out.init_root::<system_info::summary_results::Builder>();
        r.set_uptime_nanos(super::timer::now());
        r.set_cpus(crate::sched::usable_cpus());
        r.set_total_frames(frames.usable);
        r.set_free_frames(frames.free);
        let mut list = r.init_processes(procs.len() as u32);
        for (i, p) in procs.iter().enumerate() {
            let mut e = list.reborrow().get(i as u32);
            e.set_pid(p.pid);
            e.set_name(p.name.as_str());
            e.set_caps(p.caps.lock().len() as u32);
            e.set_frames(p.ledger.used(Resource::Frames));
        }
        drop(procs);
        cx.reply(&out)
    }

    fn motd(&self, cx: &mut Call<'a>) -> Outcome {
        let text = MOTD.get().map_or(DEFAULT_MOTD, String::as_str);
        let mut out = Builder::new_default();
        out.init_root::<system_info::motd_results::Builder>()
            .set_text(text);
        cx.reply(&out)
    }
}
