//! hostile: feeds the kernel malformed ring input and checks that each one
//! gets exactly the error `docs/ring-abi.md` and the process ABI document.
//!
//! Every case prints `hostile: ok <case>` or
//! `hostile: FAIL <case>: got <X> expected <Y>`; the last line is
//! `hostile: all <N> cases passed` (exit 0) or
//! `hostile: <K> of <N> cases failed` (exit 1). Positive controls (a Null
//! ping, a NOP, a console write) show the ring still works around the bad
//! input, in particular after the ring's own indices were corrupted.
//!
//! Needs the caps `console` (Console) and `null` (Null).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use capos_rt::capnp::message::Builder;
use capos_rt::caps::schema::capos_capnp::console;
use capos_rt::caps::CapId;
use capos_rt::error::SyscallCode;
use capos_rt::ring::process::{SyscallError, CAPSET_ADDR};
use capos_rt::ring::{
    Opcode, Sqe, TransportError, CQ_ENTRIES, MAX_PARAMS_LEN, MAX_RESULT_LEN, MAX_TRANSFERS,
    USER_ADDR_END,
};
use capos_rt::{syscall, wire, CallError, Console, Interface, NullCap, Runtime};

capos_rt::entry!(main);

/// Lowest kernel-half address.
const KERNEL_HALF: u64 = 0xffff_8000_0000_0000;
/// A user address in the never-mapped first MiB.
const UNMAPPED: u64 = 0x1000;
/// `Console.writeLine`'s method ordinal.
const WRITE_LINE: u16 = 1;
/// A method ordinal Console does not have.
const NO_SUCH_METHOD: u16 = 99;

/// An observed or expected outcome: a CQE result or a `cap_enter` return
/// (both: `>= 0` success, `< 0` an ABI error code).
type Code = i64;

fn transport(e: TransportError) -> Code {
    Code::from(e.code())
}

fn syscall_error(e: SyscallError) -> Code {
    e.code()
}

/// `BAD_CAP (-7)`, `success (0)`, ...
fn describe(code: Code) -> String {
    if code >= 0 {
        format!("success ({code})")
    } else {
        format!("{}", SyscallCode(code))
    }
}

struct Suite {
    console: Console,
    total: u32,
    failed: u32,
}

/// `Null.echoLater`: a call that completes later through nothing but the
/// shared deferred-completion path. It answers with its data after the
/// delay; two complete in deadline order whatever order they were made in;
/// a result buffer too small is refused at once.
fn deferred_object(rt: &Runtime, s: &mut Suite, null: &NullCap) {
    s.check_ok(
        "echo-later",
        match null.echo_later(b"later", 20_000_000) {
            Ok(d) if d == b"later" => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    let ring = rt.ring();
    let order = (|| {
        let slow = echo_later(rt, null.cap().id(), b"slow", 30_000_000, 64)?;
        let fast = echo_later(rt, null.cap().id(), b"fast", 10_000_000, 64)?;
        let slow = ring.wait(slow)?;
        let fast = ring.wait(fast)?;
        Ok::<_, CallError>((
            fast.seq < slow.seq,
            fast.into_result()?,
            slow.into_result()?,
        ))
    })();
    s.check_ok(
        "echo-later-deadline-order",
        match order {
            Ok((true, _, _)) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    s.check(
        "echo-later-buffer-too-small",
        echo_later(rt, null.cap().id(), b"does not fit in eight bytes", 1, 8)
            .and_then(|t| ring.wait(t))
            .map(|c| Code::from(c.cqe.result)),
        transport(TransportError::BufferTooSmall),
    );
}

/// Submits `Null.echoLater(data, nanos)` on `cap` with a result buffer of
/// `capacity` bytes, without waiting.
fn echo_later(
    rt: &Runtime,
    cap: u64,
    data: &[u8],
    nanos: u64,
    capacity: usize,
) -> Result<capos_rt::Ticket, CallError> {
    let mut m = Builder::new_default();
    let mut p =
        m.init_root::<capos_rt::caps::schema::capos_capnp::null::echo_later_params::Builder>();
    p.set_data(data);
    p.set_nanos(nanos);
    rt.ring().submit(
        cap,
        capos_rt::caps::api::null::ECHO_LATER,
        wire::to_bytes(&m),
        capacity,
    )
}

impl Suite {
    fn say(&self, line: &str) {
        let _ = self.console.write_line(line);
    }

    /// Records one case: `got` (or the runtime error that prevented it)
    /// against `want`.
    fn check(&mut self, case: &str, got: Result<Code, CallError>, want: Code) {
        self.total += 1;
        match got {
            Ok(code) if code == want => self.say(&format!("hostile: ok {case}")),
            Ok(code) => {
                self.failed += 1;
                self.say(&format!(
                    "hostile: FAIL {case}: got {} expected {}",
                    describe(code),
                    describe(want)
                ));
            }
            Err(e) => {
                self.failed += 1;
                self.say(&format!(
                    "hostile: FAIL {case}: got runtime error ({e}) expected {}",
                    describe(want)
                ));
            }
        }
    }

    /// Records a case that has no code, only success or a reason.
    fn check_ok(&mut self, case: &str, got: Result<(), String>) {
        self.total += 1;
        match got {
            Ok(()) => self.say(&format!("hostile: ok {case}")),
            Err(why) => {
                self.failed += 1;
                self.say(&format!("hostile: FAIL {case}: got {why} expected success"));
            }
        }
    }

    /// A case decided by the ring's validator: the expectation is the
    /// documented error, and `Sqe::validate` must agree with it before the
    /// kernel is even asked.
    fn check_validated(&mut self, rt: &Runtime, case: &str, sqe: Sqe, want: TransportError) {
        match sqe.validate() {
            Err(e) if e == want => {}
            other => {
                self.total += 1;
                self.failed += 1;
                self.say(&format!(
                    "hostile: FAIL {case}: Sqe::validate gives {other:?}, the documented error is {}",
                    want.name()
                ));
                return;
            }
        }
        self.check(case, submit(rt, sqe), transport(want));
    }
}

/// Submits `sqe` as is and waits for its completion; returns its result.
/// The system-call ABI: after an empty `cap_enter`, the argument registers
/// come back zero (no kernel value in them) and the callee-saved ones as
/// they were.
fn syscall_registers() -> Result<(), String> {
    let probe = syscall::probe_registers();
    if probe.cleared != [0; 6] {
        return Err(format!(
            "RDI, RSI, RDX, R8-R10 = {:x?} (not cleared)",
            probe.cleared
        ));
    }
    if probe.preserved != syscall::PROBE_PATTERNS {
        return Err(format!(
            "RBX, RBP, R12-R15 = {:x?} (not preserved)",
            probe.preserved
        ));
    }
    if (probe.result as i64) < 0 {
        return Err(format!("cap_enter returned {}", probe.result as i64));
    }
    Ok(())
}

fn submit(rt: &Runtime, sqe: Sqe) -> Result<Code, CallError> {
    let ring = rt.ring();
    let ticket = ring.submit_raw(sqe)?;
    Ok(Code::from(ring.wait(ticket)?.cqe.result))
}

/// A blocking CALL through the runtime, as a code.
fn call(rt: &Runtime, cap: u64, method: u16, params: Vec<u8>) -> Result<Code, CallError> {
    match rt.ring().call(cap, method, params, 1024) {
        Ok(bytes) => Ok(bytes.len() as Code),
        Err(CallError::Transport(e)) => Ok(transport(e)),
        Err(e) => Err(e),
    }
}

/// Serialized `Console.writeLine` parameters.
fn write_line_params(text: &str) -> Vec<u8> {
    let mut m = Builder::new_default();
    m.init_root::<console::write_line_params::Builder>()
        .set_text(text);
    wire::to_bytes(&m)
}

/// A CALL SQE of `method` on `cap` with the given raw buffer fields.
fn call_sqe(cap: u64, method: u16, params: (u64, u32), result: (u64, u32)) -> Sqe {
    Sqe {
        opcode: Opcode::Call as u8,
        method_id: method,
        cap_id: cap,
        params_addr: params.0,
        params_len: params.1,
        result_addr: result.0,
        result_len: result.1,
        ..Sqe::default()
    }
}

fn buf(bytes: &[u8]) -> (u64, u32) {
    (bytes.as_ptr() as u64, bytes.len() as u32)
}

fn main(rt: &mut Runtime) -> i32 {
    let Ok(console) = rt.cap::<Console>("console") else {
        return 2;
    };
    let con = console.cap().id();
    let mut s = Suite {
        console,
        total: 0,
        failed: 0,
    };
    s.say(&format!("hostile: started (pid {})", rt.pid()));

    // Positive controls first: the caps work when used correctly.
    let null = match rt.cap_owned::<NullCap>("null") {
        Ok(n) => Some(n),
        Err(e) => {
            s.check_ok("null-ping", Err(format!("{e}")));
            None
        }
    };
    if let Some(n) = &null {
        s.check_ok("null-ping", n.ping().map_err(|e| format!("{e}")));
        deferred_object(rt, &mut s, n);
    }
    s.check_ok("nop", rt.ring().nop().map_err(|e| format!("{e}")));
    s.check_ok("syscall-registers", syscall_registers());

    // Opcodes: 0 is reserved so that a zeroed slot is never a request.
    let nop = Sqe {
        opcode: Opcode::Nop as u8,
        ..Sqe::default()
    };
    s.check_validated(
        rt,
        "opcode-0",
        Sqe { opcode: 0, ..nop },
        TransportError::InvalidOpcode,
    );
    s.check_validated(
        rt,
        "opcode-200",
        Sqe { opcode: 200, ..nop },
        TransportError::InvalidOpcode,
    );

    // Flags, reserved and unused fields.
    s.check_validated(
        rt,
        "nop-flags",
        Sqe { flags: 1, ..nop },
        TransportError::InvalidFlags,
    );
    let params = write_line_params("hostile: must not print");
    let good_call = call_sqe(con, WRITE_LINE, buf(&params), (0, 0));
    s.check_validated(
        rt,
        "call-flags",
        Sqe {
            flags: 0x80,
            ..good_call
        },
        TransportError::InvalidFlags,
    );
    s.check_validated(
        rt,
        "nop-reserved0",
        Sqe {
            reserved0: 1,
            ..nop
        },
        TransportError::ReservedNonZero,
    );
    s.check_validated(
        rt,
        "nop-unused-field",
        Sqe { cap_id: con, ..nop },
        TransportError::ReservedNonZero,
    );
    s.check_validated(
        rt,
        "call-call-id",
        Sqe {
            call_id: 5,
            ..good_call
        },
        TransportError::ReservedNonZero,
    );

    // Capability ids.
    let never_issued = CapId::new(1000, CapId::FIRST_GENERATION)
        .map(CapId::to_raw)
        .unwrap_or(0x3e8);
    s.check(
        "cap-never-issued",
        call(rt, never_issued, WRITE_LINE, params.clone()),
        transport(TransportError::BadCap),
    );
    s.check(
        "cap-high-bits",
        call(rt, con | 0xdead_0000_0000_0000, WRITE_LINE, params.clone()),
        transport(TransportError::BadCap),
    );
    s.check(
        "cap-null",
        call(rt, 0, WRITE_LINE, params.clone()),
        transport(TransportError::BadCap),
    );
    s.check(
        "release-never-issued",
        submit(
            rt,
            Sqe {
                opcode: Opcode::Release as u8,
                cap_id: never_issued,
                ..Sqe::default()
            },
        ),
        transport(TransportError::BadCap),
    );

    // Buffers.
    s.check_validated(
        rt,
        "params-kernel-half",
        call_sqe(con, WRITE_LINE, (KERNEL_HALF, 64), (0, 0)),
        TransportError::BadAddress,
    );
    s.check_validated(
        rt,
        "params-past-user-end",
        call_sqe(con, WRITE_LINE, (USER_ADDR_END - 8, 64), (0, 0)),
        TransportError::BadAddress,
    );
    s.check_validated(
        rt,
        "params-wrapping",
        call_sqe(con, WRITE_LINE, (u64::MAX - 15, 64), (0, 0)),
        TransportError::BadAddress,
    );
    s.check_validated(
        rt,
        "params-huge-length",
        call_sqe(con, WRITE_LINE, (params.as_ptr() as u64, u32::MAX), (0, 0)),
        TransportError::BadLength,
    );
    s.check_validated(
        rt,
        "params-too-long",
        call_sqe(
            con,
            WRITE_LINE,
            (params.as_ptr() as u64, MAX_PARAMS_LEN + 1),
            (0, 0),
        ),
        TransportError::BadLength,
    );
    s.check_validated(
        rt,
        "result-too-long",
        call_sqe(
            con,
            WRITE_LINE,
            buf(&params),
            (CAPSET_ADDR, MAX_RESULT_LEN + 1),
        ),
        TransportError::BadLength,
    );
    s.check_validated(
        rt,
        "empty-params-with-address",
        call_sqe(con, WRITE_LINE, (params.as_ptr() as u64, 0), (0, 0)),
        TransportError::BadAddress,
    );
    s.check_validated(
        rt,
        "too-many-transfers",
        Sqe {
            xfer_count: MAX_TRANSFERS + 1,
            ..good_call
        },
        TransportError::InvalidTransfer,
    );
    // These pass the validator; the kernel's page-table checks refuse them.
    s.check(
        "params-unmapped",
        submit(rt, call_sqe(con, WRITE_LINE, (UNMAPPED, 64), (0, 0))),
        transport(TransportError::BadAddress),
    );
    s.check(
        "result-read-only",
        submit(
            rt,
            call_sqe(con, WRITE_LINE, buf(&params), (CAPSET_ADDR, 64)),
        ),
        transport(TransportError::BadAddress),
    );
    s.check(
        "result-unmapped",
        submit(rt, call_sqe(con, WRITE_LINE, buf(&params), (UNMAPPED, 64))),
        transport(TransportError::BadAddress),
    );

    // Methods and operations the capability does not have.
    s.check(
        "console-no-such-method",
        call(rt, con, NO_SUCH_METHOD, write_line_params("x")),
        transport(TransportError::NoSuchMethod),
    );
    s.check(
        "recv-on-console",
        submit(
            rt,
            Sqe {
                opcode: Opcode::Recv as u8,
                cap_id: con,
                ..Sqe::default()
            },
        ),
        transport(TransportError::InterfaceMismatch),
    );

    // System calls.
    s.check(
        "cap-enter-min-complete",
        Ok(syscall::cap_enter(u64::from(CQ_ENTRIES) + 1, 0)),
        syscall_error(SyscallError::MinCompleteTooLarge),
    );
    // Blocking with a deadline and nothing to wait for: the kernel must park
    // the thread and the timer tick must wake it when the 20 ms pass, with
    // no completion available (a broken wake-up would hang here).
    // RFLAGS.NT and AC set in ring 3 must not reach the kernel: block in
    // cap_enter so this CPU switches to other threads with our flags in
    // force (a leaked NT makes a kernel IRETQ fault and halts the CPU).
    capos_rt::fault::set_nt_and_ac();
    s.check(
        "nt-ac-do-not-leak",
        Ok(syscall::cap_enter(1, 30_000_000)),
        0,
    );
    s.check(
        "cap-enter-times-out",
        Ok(syscall::cap_enter(1, 20_000_000)),
        0,
    );
    s.check(
        "syscall-2",
        Ok(syscall::raw_syscall(2, 0, 0)),
        syscall_error(SyscallError::BadSyscall),
    );
    s.check(
        "syscall-max",
        Ok(syscall::raw_syscall(u64::MAX, 0, 0)),
        syscall_error(SyscallError::BadSyscall),
    );

    // A corrupted ring: sq_tail 1000 entries past sq_head. The kernel must
    // refuse the index, consume nothing, and serve the ring again once the
    // tail is back.
    s.check(
        "ring-corrupted-sq-tail",
        rt.ring().enter_with_bogus_sq_tail(1000),
        transport(TransportError::RingCorrupted),
    );
    s.check_ok(
        "ring-recovers-nop",
        rt.ring().nop().map_err(|e| format!("{e}")),
    );
    s.check_ok(
        "ring-recovers-console",
        s.console
            .write_line("hostile: console still works after ring corruption")
            .map_err(|e| format!("{e}")),
    );

    // A released cap's id is stale: release the Null cap, then call it.
    // A call made through it before the release still completes.
    if let Some(n) = null {
        let id = n.cap().id();
        let waiting = echo_later(rt, id, b"outlives its cap", 10_000_000, 64);
        drop(n);
        s.check_ok(
            "release-null",
            match rt.flush_releases() {
                Ok(0) => Ok(()),
                Ok(n) => Err(format!("{n} releases refused")),
                Err(e) => Err(format!("{e}")),
            },
        );
        s.check_ok(
            "echo-later-outlives-its-cap",
            match waiting
                .and_then(|t| rt.ring().wait(t))
                .and_then(|c| c.into_result())
            {
                Ok(_) => Ok(()),
                Err(e) => Err(format!("{e}")),
            },
        );
        s.check(
            "cap-stale-generation",
            call(rt, id, 0, Vec::new()),
            transport(TransportError::BadCap),
        );
    }

    if s.failed == 0 {
        s.say(&format!("hostile: all {} cases passed", s.total));
        0
    } else {
        s.say(&format!(
            "hostile: {} of {} cases failed",
            s.failed, s.total
        ));
        1
    }
}
