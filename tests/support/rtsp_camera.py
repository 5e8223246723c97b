#!/usr/bin/python3
"""A real RTSP camera for tests: GStreamer's rtsp-server (Debian's
gir1.2-gst-rtsp-server-1.0), passing H.264 or H.265 through from files that
ffmpeg encoded (nothing is decoded or encoded here), with digest or basic
auth, as an IP camera serves its stream.

  /usr/bin/python3 rtsp_camera.py --port 0 --user admin --password s3cret \
      --mount cam=cam.mp4 [--mount hevc=cam265.mp4:h265] [--clock live] [--auth digest|basic|none]

`--clock NAME` is a live camera that burns the wall clock into its picture,
for glass-to-glass latency: ffmpeg encodes it (320x240, 30 fps, a keyframe
every 2 s, libx264 zerolatency) when a client first asks, and each frame's
top 16 rows are 40 blocks of 8x16 pixels, white for a 1 bit, black for a 0,
bit k being bit k of the Unix time in milliseconds when the frame was made.

Prints one line `{"port": N}` once it listens (port 0: one the kernel picks).
SIGUSR1 freezes every stream (the TCP connection stays open, no more video:
a camera that hangs); SIGUSR2 lets it flow again. SIGTERM ends it.
"""
import argparse
import json
import os
import signal
import subprocess
import sys

import gi

gi.require_version('Gst', '1.0')
gi.require_version('GstRtsp', '1.0')
gi.require_version('GstRtspServer', '1.0')
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--port', type=int, default=0)
    parser.add_argument('--user', default='')
    parser.add_argument('--password', default='')
    parser.add_argument('--auth', choices=['digest', 'basic', 'none'], default='digest')
    parser.add_argument('--mount', action='append', default=[], help='name=file.mp4[:h264|h265]')
    parser.add_argument('--clock', action='append', default=[], help='name: a live camera burning the wall clock')
    args = parser.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address('127.0.0.1')
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    valves = []

    if args.auth != 'none':
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string('media.factory.role', 'user')
        if args.auth == 'digest':
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
            auth.add_digest(args.user, args.password, token)
        else:
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.BASIC)
            auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password), token)
        server.set_auth(auth)

    def share(factory):
        """One pipeline for every client, open to the authenticated user."""
        factory.set_shared(True)
        if args.auth != 'none':
            permissions = GstRtspServer.RTSPPermissions()
            permissions.add_permission_for_role('user', 'media.factory.access', True)
            permissions.add_permission_for_role('user', 'media.factory.construct', True)
            factory.set_permissions(permissions)

    for spec in args.mount:
        name, _, rest = spec.partition('=')
        path, _, codec = rest.rpartition(':') if rest.endswith((':h264', ':h265')) else (rest, '', 'h264')
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(f'( filesrc location="{path}" ! qtdemux ! {codec}parse config-interval=-1 '
                           f'! valve name=freeze drop=false ! rtp{codec}pay name=pay0 pt=96 )')
        share(factory)
        factory.connect('media-configure', lambda _f, media: valves.append(media.get_element().get_by_name('freeze')))
        mounts.add_factory(f'/{name}', factory)

    sources = []  # the clock cameras' ffmpeg processes

    def clock_media(_factory, media):
        read_end, write_end = os.pipe()
        # setpts=RTCTIME: each frame's time is the wall clock when it is made
        # (-re paces them), which geq writes into the picture.
        bits = "if(lt(Y\\,16)\\,if(bitand(floor(T*1000)\\,pow(2\\,floor(X/8)))\\,235\\,16)\\,lum(X\\,Y))"
        sources.append(subprocess.Popen(
            ['ffmpeg', '-v', 'fatal', '-nostdin', '-re', '-f', 'lavfi', '-i', 'color=c=gray:s=320x240:r=30',
             '-vf', f"settb=AVTB,setpts=RTCTIME,geq=lum='{bits}':cb=128:cr=128", '-fps_mode', 'passthrough',
             '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', '60', '-keyint_min', '60',
             '-pix_fmt', 'yuv420p', '-f', 'h264', 'pipe:1'], stdout=write_end, stdin=subprocess.DEVNULL))
        os.close(write_end)
        media.get_element().get_by_name('src').set_property('fd', read_end)
        valves.append(media.get_element().get_by_name('freeze'))

    for name in args.clock:
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch('( fdsrc name=src do-timestamp=true ! h264parse config-interval=-1 '
                           '! valve name=freeze drop=false ! rtph264pay name=pay0 pt=96 )')
        share(factory)
        factory.connect('media-configure', clock_media)
        mounts.add_factory(f'/{name}', factory)

    if server.attach(None) == 0:
        sys.exit('cannot listen')
    print(json.dumps({'port': server.get_bound_port()}), flush=True)

    loop = GLib.MainLoop()

    def freeze(drop):
        for valve in valves:
            if valve is not None:
                valve.set_property('drop', drop)
        return GLib.SOURCE_CONTINUE

    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGUSR1, freeze, True)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGUSR2, freeze, False)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, loop.quit)
    loop.run()
    for source in sources:
        source.kill()
        source.wait()


if __name__ == '__main__':
    main()
