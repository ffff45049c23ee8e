# A schema for capos-reflect's tests only: every primitive width, defaults,
# lists of each kind, nested structs, enums, unions and groups.
@0x84c3f7064a146e31;

enum Color {
  red @0;
  green @1;
  blue @2;
}

struct Inner {
  x @0 :Int16;
  name @1 :Text;
}

struct Widths {
  i8 @0 :Int8;
  i16 @1 :Int16;
  i32 @2 :Int32;
  i64 @3 :Int64;
  u8 @4 :UInt8;
  u16 @5 :UInt16;
  u32 @6 :UInt32;
  u64 @7 :UInt64;
  f32 @8 :Float32;
  f64 @9 :Float64;
  b @10 :Bool;
  t @11 :Text;
  d @12 :Data;
  e @13 :Color;
  i32d @14 :Int32 = -5;
  u8d @15 :UInt8 = 200;
  bd @16 :Bool = true;
  f64d @17 :Float64 = 1.5;
  ed @18 :Color = blue;
  li8 @19 :List(Int8);
  lb @20 :List(Bool);
  lt @21 :List(Text);
  ll @22 :List(List(UInt16));
  ls @23 :List(Inner);
  le @24 :List(Color);
  inner @25 :Inner;
  choice :union {
    none @26 :Void;
    n @27 :UInt32;
    s @28 :Text;
  }
  grp :group {
    a @29 :UInt8;
    c @30 :Text;
  }
  v @31 :Void;
}

interface Test {
  all @0 (w :Widths) -> (w :Widths);
  text @1 (t :Text) -> (t :Text);
  data @2 (d :Data) -> (d :Data);
}
