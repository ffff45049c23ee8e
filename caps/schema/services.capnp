# Protocols that userspace services serve over endpoints. Client and server
# code for them is generated from this file like for the kernel interfaces
# (see docs/schema.md); the kernel never interprets them.
@0xb1a923be88ea1a95;

using C = import "capos.capnp";

interface Echo @0x975f538cdc85f147 {
  # The echo server of the default service graph.
  echo @0 (data :Data) -> (data :Data);
  # Answers with the data it was sent.
  fail @1 () -> ();
  # Always answers with an application exception.
  quit @2 () -> ();
  # Answers, then the server exits (clients then see a dead server).
  inspectCaps @3 () -> (count :UInt32);
  # Reports the capabilities sent with the call on the console, releases
  # them, and answers with how many there were.
  useTimer @4 () -> (nanos :UInt64);
  # Calls `now` on a Timer sent with the call and answers with it.
}

interface SharedMemoryDemo @0x9c9e36a5ed2f6b45 {
  # The shared-memory producer's protocol (the consumer is its client).
  share @0 () -> (memory :UInt16 $C.resultCap("MemoryObject"));
  # A copy of the producer's memory object.
  check @1 () -> (answer :Text);
  # The consumer's answer as the producer reads it in its own mapping of
  # the shared pages (an exception if the consumer has not written it).
  refusedReturns @2 () -> (note :Text);
  # The producer first tries two RETURNs the kernel must refuse, then
  # answers with a note.
  done @3 () -> ();
  # Ends the demo.
  giveFrames @4 () -> (frames :UInt16 $C.resultCap("FrameAllocator"));
  # Moves the producer's FrameAllocator to the caller.
}
