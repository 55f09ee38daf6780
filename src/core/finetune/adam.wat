;; The Adam update of core/finetune/adam-wasm.ts, four float32 lanes at a time (WebAssembly SIMD):
;;   m = b1 m + a1 g;  v = b2 v + a2 g g;  w = w - (step m) / (sqrt(v) root + eps)
;; every operation in float32, rounded as IEEE 754 rounds it (what a JS loop gets with Math.fround
;; after each operation). The arrays are n float32 values at byte offsets w, g, m, v of the imported
;; memory (16-byte aligned); the last n mod 4 go one at a time.
;; The bytes adam-wasm.ts carries are this file compiled by wabt (`npm run wasm`; a test checks them).
(module
  (import "env" "memory" (memory 1))
  (func (export "adam") (param $w i32) (param $g i32) (param $m i32) (param $v i32) (param $n i32)
        (param $b1 f32) (param $b2 f32) (param $a1 f32) (param $a2 f32) (param $step f32) (param $root f32) (param $eps f32)
    (local $i i32) (local $end i32) (local $gi v128) (local $mi v128) (local $vi v128)
    (local $B1 v128) (local $B2 v128) (local $A1 v128) (local $A2 v128) (local $S v128) (local $R v128) (local $E v128)
    (local $gs f32) (local $ms f32) (local $vs f32)
    (local.set $B1 (f32x4.splat (local.get $b1)))
    (local.set $B2 (f32x4.splat (local.get $b2)))
    (local.set $A1 (f32x4.splat (local.get $a1)))
    (local.set $A2 (f32x4.splat (local.get $a2)))
    (local.set $S (f32x4.splat (local.get $step)))
    (local.set $R (f32x4.splat (local.get $root)))
    (local.set $E (f32x4.splat (local.get $eps)))
    (local.set $end (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (local.set $i (i32.const 0))
    (block $done
      (loop $loop
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $gi (v128.load (i32.add (local.get $g) (local.get $i))))
        (local.set $mi (f32x4.add (f32x4.mul (local.get $B1) (v128.load (i32.add (local.get $m) (local.get $i)))) (f32x4.mul (local.get $A1) (local.get $gi))))
        (local.set $vi (f32x4.add (f32x4.mul (local.get $B2) (v128.load (i32.add (local.get $v) (local.get $i)))) (f32x4.mul (local.get $A2) (f32x4.mul (local.get $gi) (local.get $gi)))))
        (v128.store (i32.add (local.get $m) (local.get $i)) (local.get $mi))
        (v128.store (i32.add (local.get $v) (local.get $i)) (local.get $vi))
        (v128.store (i32.add (local.get $w) (local.get $i))
          (f32x4.sub (v128.load (i32.add (local.get $w) (local.get $i)))
            (f32x4.div (f32x4.mul (local.get $S) (local.get $mi))
                       (f32x4.add (f32x4.mul (f32x4.sqrt (local.get $vi)) (local.get $R)) (local.get $E)))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $loop)))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $done2
      (loop $loop2
        (br_if $done2 (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $gs (f32.load (i32.add (local.get $g) (local.get $i))))
        (local.set $ms (f32.add (f32.mul (local.get $b1) (f32.load (i32.add (local.get $m) (local.get $i)))) (f32.mul (local.get $a1) (local.get $gs))))
        (local.set $vs (f32.add (f32.mul (local.get $b2) (f32.load (i32.add (local.get $v) (local.get $i)))) (f32.mul (local.get $a2) (f32.mul (local.get $gs) (local.get $gs)))))
        (f32.store (i32.add (local.get $m) (local.get $i)) (local.get $ms))
        (f32.store (i32.add (local.get $v) (local.get $i)) (local.get $vs))
        (f32.store (i32.add (local.get $w) (local.get $i))
          (f32.sub (f32.load (i32.add (local.get $w) (local.get $i)))
            (f32.div (f32.mul (local.get $step) (local.get $ms))
                     (f32.add (f32.mul (f32.sqrt (local.get $vs)) (local.get $root)) (local.get $eps)))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $loop2)))))
