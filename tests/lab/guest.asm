; vmshift lab guest: a tiny multiboot kernel that dirties memory at a known
; rate and reports progress on the serial port.
;
; Every 1 ms (PIT at 1 kHz) it writes one byte into each of PAGES 4 KiB pages,
; round-robin over a REGION of pages starting at 16 MiB, so the guest dirties
; PAGES × 4 KiB per millisecond over a writable working set of REGION pages.
; Once a second it prints "t=<seconds> pages=<PAGES>" on COM1. Between ticks
; it halts, so it costs almost no host CPU.
;
; ACPI power button (a `virsh shutdown`, or the power-off half of a
; `virsh reboot`): on the PIIX4 PM of QEMU's pc machine it prints
; "power button: off" and powers off (PM1a_CNT: SLP_EN, SLP_TYP 0),
; checked once a second.
;
; Kernel command line: "pages=N region=R" (decimal; defaults 0 and 16384).
; Build: nasm -f bin -o guest.bin guest.asm

bits 32
org 0x100000

MB_MAGIC    equ 0x1BADB002
MB_FLAGS    equ 0x00010003          ; page-align, memory info, a.out kludge
REGION_BASE equ 0x01000000          ; 16 MiB
COM1        equ 0x3F8

header:
    dd MB_MAGIC
    dd MB_FLAGS
    dd -(MB_MAGIC + MB_FLAGS)
    dd header                       ; header_addr
    dd header                       ; load_addr
    dd load_end                     ; load_end_addr
    dd bss_end                      ; bss_end_addr
    dd start                        ; entry_addr

start:
    cli
    mov esp, stack_top
    lgdt [gdt_desc]
    jmp 0x08:reload
reload:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
    mov ss, ax

    ; Command line (multiboot info flag bit 2).
    test dword [ebx], 4
    jz .no_cmdline
    mov esi, [ebx + 16]
    call parse_cmdline
.no_cmdline:
    ; Keep the region inside guest memory: mem_upper (KiB above 1 MiB).
    test dword [ebx], 1
    jz .no_meminfo
    mov eax, [ebx + 8]
    shr eax, 2                      ; KiB -> pages above 1 MiB
    sub eax, 4096 - 256             ; minus the 15 MiB between 1 and 16 MiB
    jbe .no_meminfo
    cmp eax, [region]
    jae .no_meminfo
    mov [region], eax
.no_meminfo:
    cmp dword [region], 0
    jne .region_ok
    mov dword [region], 1
.region_ok:

    call serial_init
    call acpi_init
    mov esi, msg_boot
    call puts
    mov eax, [pages]
    call putdec
    mov esi, msg_region
    call puts
    mov eax, [region]
    call putdec
    mov al, 10
    call putc

    ; PIC: remap to 0x20/0x28, unmask only IRQ0.
    mov al, 0x11
    out 0x20, al
    out 0xA0, al
    mov al, 0x20
    out 0x21, al
    mov al, 0x28
    out 0xA1, al
    mov al, 4
    out 0x21, al
    mov al, 2
    out 0xA1, al
    mov al, 1
    out 0x21, al
    out 0xA1, al
    mov al, 0xFE
    out 0x21, al
    mov al, 0xFF
    out 0xA1, al

    ; IDT: every vector ignores, vector 0x20 is the timer.
    mov edi, idt
    mov ecx, 256
.fill:
    mov eax, ignore
    mov [edi], ax
    mov word [edi + 2], 0x08
    mov word [edi + 4], 0x8E00
    shr eax, 16
    mov [edi + 6], ax
    add edi, 8
    loop .fill
    mov eax, timer
    mov edi, idt + 0x20 * 8
    mov [edi], ax
    shr eax, 16
    mov [edi + 6], ax
    lidt [idt_desc]

    ; PIT channel 0, rate generator, 1193182 / 1193 ≈ 1000 Hz.
    mov al, 0x34
    out 0x43, al
    mov ax, 1193
    out 0x40, al
    mov al, ah
    out 0x40, al

    sti
idle:
    hlt
    jmp idle

ignore:
    iret

timer:
    pushad
    mov ecx, [pages]
    test ecx, ecx
    jz .counted
    mov eax, [cursor]
.dirty:
    mov edx, eax
    shl edx, 12
    add edx, REGION_BASE
    inc byte [edx]
    inc eax
    cmp eax, [region]
    jb .next
    xor eax, eax
.next:
    loop .dirty
    mov [cursor], eax
.counted:
    inc dword [ticks]
    mov eax, [ticks]
    xor edx, edx
    mov ebx, 1000
    div ebx
    test edx, edx
    jnz .eoi
    push eax
    mov esi, msg_t
    call puts
    pop eax
    call putdec
    mov esi, msg_pages
    call puts
    mov eax, [pages]
    call putdec
    mov al, 10
    call putc
    ; The power button, once a second.
    mov edx, [pmbase]
    test edx, edx
    jz .eoi
    in ax, dx                       ; PM1a_STS
    test ax, 0x0100                 ; PWRBTN_STS
    jz .eoi
    mov esi, msg_off
    call puts
    mov edx, [pmbase]
    add edx, 4                      ; PM1a_CNT
    mov ax, 0x2000                  ; SLP_EN, SLP_TYP 0: soft off
    out dx, ax
.eoi:
    mov al, 0x20
    out 0x20, al
    popad
    iret

; --- ACPI: the PM I/O base of PIIX4 (bus 0, device 1, function 3) ---
acpi_init:
    mov eax, 0x80000000 | (1 << 11) | (3 << 8)
    mov dx, 0xCF8
    out dx, eax
    mov dx, 0xCFC
    in eax, dx
    cmp eax, 0x71138086             ; PIIX4 ACPI
    jne .none
    mov eax, 0x80000000 | (1 << 11) | (3 << 8) | 0x40
    mov dx, 0xCF8
    out dx, eax
    mov dx, 0xCFC
    in eax, dx                      ; PMBA
    and eax, 0xFFC0
    jz .none
    mov [pmbase], eax
    lea edx, [eax + 2]              ; PM1a_EN
    mov ax, 0x0100                  ; PWRBTN_EN
    out dx, ax
.none:
    ret

; --- command line: "pages=N region=R" ---
parse_cmdline:
.scan:
    mov al, [esi]
    test al, al
    jz .done
    cmp dword [esi], 'page'
    jne .try_region
    cmp word [esi + 4], 's='
    jne .try_region
    add esi, 6
    call getdec
    mov [pages], eax
    jmp .scan
.try_region:
    cmp dword [esi], 'regi'
    jne .skip
    cmp word [esi + 4], 'on'
    jne .skip
    cmp byte [esi + 6], '='
    jne .skip
    add esi, 7
    call getdec
    mov [region], eax
    jmp .scan
.skip:
    inc esi
    jmp .scan
.done:
    ret

; decimal at esi -> eax, esi past the digits
getdec:
    xor eax, eax
.d:
    movzx edx, byte [esi]
    sub edx, '0'
    cmp edx, 9
    ja .end
    imul eax, eax, 10
    add eax, edx
    inc esi
    jmp .d
.end:
    ret

; --- serial ---
serial_init:
    mov dx, COM1 + 1
    xor al, al
    out dx, al                      ; no interrupts
    mov dx, COM1 + 3
    mov al, 0x80
    out dx, al                      ; DLAB
    mov dx, COM1
    mov al, 1
    out dx, al                      ; 115200 baud
    mov dx, COM1 + 1
    xor al, al
    out dx, al
    mov dx, COM1 + 3
    mov al, 3
    out dx, al                      ; 8N1
    ret

putc:
    push edx
    push eax
    mov dx, COM1 + 5
.wait:
    in al, dx
    test al, 0x20
    jz .wait
    pop eax
    mov dx, COM1
    out dx, al
    pop edx
    ret

puts:
    lodsb
    test al, al
    jz .done
    call putc
    jmp puts
.done:
    ret

putdec:
    push ebx
    push ecx
    push edx
    mov ebx, 10
    xor ecx, ecx
.div:
    xor edx, edx
    div ebx
    push edx
    inc ecx
    test eax, eax
    jnz .div
.out:
    pop eax
    add al, '0'
    call putc
    loop .out
    pop edx
    pop ecx
    pop ebx
    ret

align 8
gdt:
    dq 0
    dq 0x00CF9A000000FFFF           ; 0x08 code
    dq 0x00CF92000000FFFF           ; 0x10 data
gdt_desc:
    dw gdt_desc - gdt - 1
    dd gdt
idt_desc:
    dw 256 * 8 - 1
    dd idt

pages:  dd 0
region: dd 16384
cursor: dd 0
ticks:  dd 0
pmbase: dd 0

msg_boot:   db "vmshift-guest: booted, pages=", 0
msg_region: db " region=", 0
msg_t:      db "t=", 0
msg_pages:  db " pages=", 0
msg_off:    db "power button: off", 10, 0

align 16
load_end:

; Uninitialised data after the image (multiboot zeroes it up to bss_end).
idt       equ load_end
stack_top equ idt + 256 * 8 + 16384
bss_end   equ stack_top
