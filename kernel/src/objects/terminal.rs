//! `TerminalSession`: the one session on the terminal (`crate::terminal`).
//! Minted only while no other session exists, moved and never copied;
//! releasing it, or moving it away, cancels its pending read and throws
//! away what was typed and not read.

use super::{names, param, serve, tri, Call, KernelObject, Outcome};
use crate::proc::Process;
use crate::terminal::{Read, Terminal, MAX_READ};
use alloc::string::String;
use alloc::sync::Arc;
use capnp::message::Builder;
use capos_caps::api::terminal_session::Server;
use capos_caps::exception::CapException;
use capos_caps::schema::capos_capnp::terminal_session;
use capos_kcore::term::{EchoMode, MAX_KEYS};

/// A session on the terminal.
pub struct TerminalSession {
    terminal: Arc<Terminal>,
}

names!(TerminalSession, terminal_session, "terminal");

impl TerminalSession {
    /// Opens the terminal's session; fails while another exists or if the
    /// system has no terminal.
    pub fn open() -> Result<TerminalSession, String> {
        crate::terminal::open_session()
            .map(|terminal| TerminalSession { terminal })
            .map_err(String::from)
    }
}

impl Drop for TerminalSession {
    fn drop(&mut self) {
        self.terminal.end_session(true);
    }
}

impl KernelObject for TerminalSession {
    fn call(&self, cx: &mut Call<'_>) -> Outcome {
        serve!(terminal_session, self, cx)
    }

    /// The old holder's read and unread input do not pass to the new one.
    fn moved_from(&self, _holder: &Process) {
        self.terminal.end_session(false);
    }
}

impl<'a> Server<Call<'a>> for TerminalSession {
    fn write(&self, cx: &mut Call<'a>, p: terminal_session::write_params::Reader<'_>) -> Outcome {
        self.terminal.write(tri!(param(p.get_data())));
        cx.reply_empty()
    }

    fn write_line(
        &self,
        cx: &mut Call<'a>,
        p: terminal_session::write_line_params::Reader<'_>,
    ) -> Outcome {
        let text = tri!(param(p.get_text()));
        self.terminal.write(text.as_bytes());
        self.terminal.write(b"\r\n");
        cx.reply_empty()
    }

    fn read_line(
        &self,
        cx: &mut Call<'a>,
        p: terminal_session::read_line_params::Reader<'_>,
    ) -> Outcome {
        let max = match p.get_max_bytes() {
            0 => MAX_READ,
            n if n <= MAX_READ => n,
            n => {
                return Outcome::Exception(CapException::failed(alloc::format!(
                    "maxBytes {n} is more than {MAX_READ}"
                )))
            }
        };
        let echo = match p.get_echo() {
            Ok(terminal_session::EchoMode::Visible) => EchoMode::Visible,
            Ok(terminal_session::EchoMode::Hidden) => EchoMode::Hidden,
            Err(capnp::NotInSchema(n)) => {
                return Outcome::Exception(CapException::failed(alloc::format!(
                    "echo mode {n} is not known"
                )))
            }
        };
        self.terminal.read(cx, Read::Line(max, echo))
    }

    fn read_key(&self, cx: &mut Call<'a>) -> Outcome {
        self.terminal.read(cx, Read::Key)
    }

    fn read_keys(
        &self,
        cx: &mut Call<'a>,
        p: terminal_session::read_keys_params::Reader<'_>,
    ) -> Outcome {
        let max = match p.get_max() as usize {
            0 => MAX_KEYS,
            n if n <= MAX_KEYS => n,
            n => {
                return Outcome::Exception(CapException::failed(alloc::format!(
                    "max {n} is more than {MAX_KEYS}"
                )))
            }
        };
        self.terminal.read(cx, Read::Keys(max))
    }

    fn cancel_read(&self, cx: &mut Call<'a>) -> Outcome {
        let cancelled = self.terminal.cancel_read();
        let mut out = Builder::new_default();
        out.init_root::<terminal_session::cancel_read_results::Builder>()
            .set_cancelled(cancelled);
        cx.reply(&out)
    }
}
