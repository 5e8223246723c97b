#!/usr/bin/python3
"""A real RTSP camera for tests: GStreamer's rtsp-server (Debian's
gir1.2-gst-rtsp-server-1.0), passing H.264 or H.265 through from files that
ffmpeg encoded (nothing is decoded or encoded here), with digest or basic
auth, as an IP camera serves its stream.

  /usr/bin/python3 rtsp_camera.py --port 0 --user admin --password s3cret \
      --mount cam=cam.mp4 [--mount hevc=cam265.mp4:h265] [--auth digest|basic|none]

Prints one line `{"port": N}` once it listens (port 0: one the kernel picks).
SIGUSR1 freezes every stream (the TCP connection stays open, no more video:
a camera that hangs); SIGUSR2 lets it flow again. SIGTERM ends it.
"""
import argparse
import json
import signal
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

    for spec in args.mount:
        name, _, rest = spec.partition('=')
        path, _, codec = rest.rpartition(':') if rest.endswith((':h264', ':h265')) else (rest, '', 'h264')
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(f'( filesrc location="{path}" ! qtdemux ! {codec}parse config-interval=-1 '
                           f'! valve name=freeze drop=false ! rtp{codec}pay name=pay0 pt=96 )')
        factory.set_shared(True)
        if args.auth != 'none':
            permissions = GstRtspServer.RTSPPermissions()
            permissions.add_permission_for_role('user', 'media.factory.access', True)
            permissions.add_permission_for_role('user', 'media.factory.construct', True)
            factory.set_permissions(permissions)
        factory.connect('media-configure', lambda _f, media: valves.append(media.get_element().get_by_name('freeze')))
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


if __name__ == '__main__':
    main()
