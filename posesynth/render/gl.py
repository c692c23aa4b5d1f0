"""The GL renderer: moderngl on a headless EGL context (Mesa's llvmpipe on a CPU machine, the GPU
when there is one), depth-buffered smooth Lambert shading with a headlight, MSAA, images of one
size drawn as tiles of one framebuffer and read back together."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from posesynth.errors import MissingExtraError, require_extra
from posesynth.render.camera import FAR, NEAR, RenderCamera, gl_projection
from posesynth.render.errors import RenderError
from posesynth.render.mesh import MeshTopology, check_batch
from posesynth.render.style import BACKGROUND

_VERTEX_SHADER = """
#version 330
uniform mat3 R;
uniform vec3 t;
uniform vec4 dist;      // k1, k2, p1, p2
uniform float limit;    // RenderCamera.distortion_limit: the lens distorts where |xy|^2 < limit
uniform mat4 P;         // gl_projection(K), applied to (distorted) camera coordinates
uniform float near;
in vec3 in_pos;
in vec3 in_normal;
out vec3 v_cam;
out vec3 v_normal;
void main() {
    vec3 p = R * in_pos + t;
    v_cam = p;
    v_normal = R * in_normal;
    vec3 q = p;
    vec2 xy = p.xy / p.z;
    float r2 = dot(xy, xy);
    if (p.z > near && dist != vec4(0.0) && r2 < limit) {  // posesynth.cameras.distort_within_limit
        float radial = 1.0 + dist.x * r2 + dist.y * r2 * r2;
        vec2 d = xy * radial + vec2(2.0 * dist.z * xy.x * xy.y + dist.w * (r2 + 2.0 * xy.x * xy.x),
                                    dist.z * (r2 + 2.0 * xy.y * xy.y) + 2.0 * dist.w * xy.x * xy.y);
        q = vec3(d * p.z, p.z);
    }
    gl_Position = P * vec4(q, 1.0);
}
"""

_FRAGMENT_SHADER = """
#version 330
uniform vec3 color;
in vec3 v_cam;
in vec3 v_normal;
out vec4 frag;
void main() {
    vec3 n = normalize(v_normal);
    vec3 l = normalize(-v_cam);           // headlight: the light sits at the camera
    float d = abs(dot(n, l));
    vec3 c = color * (0.22 + 0.78 * d) + vec3(0.10 * pow(d, 24.0));
    frag = vec4(min(c, vec3(1.0)), 1.0);
}
"""

_GL_CONTEXT: Any = None
_GL_ERROR: str | None = None


def gl_context() -> Any:
    """The process's headless moderngl context (EGL), made on first use.

    Raises ``MissingExtraError`` without moderngl (the [render] extra), and ``RenderError`` with
    the reason when no context can be created (no EGL library, no GL 3.3 driver); that reason is
    remembered, so later calls fail at once.
    """
    global _GL_CONTEXT, _GL_ERROR
    if _GL_CONTEXT is not None:
        return _GL_CONTEXT
    if _GL_ERROR is not None:
        raise RenderError(_GL_ERROR)
    require_extra("render", "the GL renderer", "moderngl")
    import moderngl

    try:
        ctx = moderngl.create_standalone_context(backend="egl", require=330)
    except Exception as exc:  # glcontext raises bare Exceptions for missing libraries and drivers
        _GL_ERROR = (f"no headless EGL context ({type(exc).__name__}: {exc}); on Debian/Ubuntu install "
                     "libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri")
        raise RenderError(_GL_ERROR) from None
    _GL_CONTEXT = ctx  # lives as long as the process; GL objects are released explicitly (``release``)
    return ctx


def gl_available() -> tuple[bool, str]:
    """(True, renderer name) when a GL context can be made, else (False, why not)."""
    try:
        ctx = gl_context()
    except (MissingExtraError, RenderError) as exc:
        return False, str(exc)
    return True, f"{ctx.info['GL_RENDERER']} / {ctx.info['GL_VERSION']}"


class GLRenderer:
    """Depth-buffered, shaded rendering with moderngl on a headless EGL context.

    ``samples``: MSAA samples per pixel (0 = none).  Images of one size are drawn as tiles
    of one framebuffer (at most ``max_atlas_pixels / max(samples, 1)`` pixels) and read
    back in one call.
    """

    name = "gl"

    def __init__(self, faces: np.ndarray, num_vertices: int, samples: int = 4,
                 max_atlas_pixels: int = 2048 * 2048) -> None:
        self.ctx = gl_context()
        import moderngl

        self._mgl = moderngl
        self.topology = MeshTopology(faces, num_vertices)
        self.samples = min(int(samples), int(self.ctx.max_samples)) if samples else 0
        self.max_atlas_pixels = max_atlas_pixels
        self.program = self.ctx.program(vertex_shader=_VERTEX_SHADER, fragment_shader=_FRAGMENT_SHADER)
        self.program["near"].value = NEAR
        self.vbo = self.ctx.buffer(reserve=self.topology.num_vertices * 6 * 4)
        self.ibo = self.ctx.buffer(self.topology.faces.tobytes())
        self.vao = self.ctx.vertex_array(self.program, [(self.vbo, "3f 3f", "in_pos", "in_normal")],
                                         index_buffer=self.ibo, index_element_size=4)
        self._fbo_size: tuple[int, int] | None = None
        self._fbo: Any = None
        self._resolve: Any = None

    def release(self) -> None:
        """Free this renderer's GL objects (the shared context stays)."""
        for obj in (self._fbo, self._resolve if self._resolve is not self._fbo else None,
                    self.vao, self.vbo, self.ibo, self.program):
            if obj is not None:
                obj.release()
        self._fbo = self._resolve = None
        self._fbo_size = None

    def _framebuffers(self, width: int, height: int) -> tuple[Any, Any]:
        """The (multisampled) framebuffer of ``width`` x ``height`` pixels to draw in and the one to read
        back from (the same one without MSAA), remade only when the size changes."""
        if self._fbo_size != (width, height):
            for obj in (self._fbo, self._resolve if self._resolve is not self._fbo else None):
                if obj is not None:
                    obj.release()
            ctx = self.ctx
            self._fbo = ctx.framebuffer(color_attachments=[ctx.renderbuffer((width, height), 4, samples=self.samples)],
                                        depth_attachment=ctx.depth_renderbuffer((width, height), samples=self.samples))
            self._resolve = ctx.simple_framebuffer((width, height), components=4) if self.samples else self._fbo
            self._fbo_size = (width, height)
        return self._fbo, self._resolve

    def _tiles(self, width: int, height: int, count: int) -> tuple[int, int]:
        """Columns and rows of tiles of ``width`` x ``height`` in one framebuffer for ``count`` images."""
        budget = self.max_atlas_pixels // max(self.samples, 1)
        limit = int(self.ctx.info["GL_MAX_RENDERBUFFER_SIZE"])
        cols = max(1, min(count, limit // width, int(np.sqrt(budget / (width * height))) or 1))
        rows = max(1, min(-(-count // cols), limit // height, budget // (cols * width * height) or 1))
        return cols, rows

    def render(self, vertices: np.ndarray, cameras: Sequence[RenderCamera], colors: Any = None,
               background: Sequence[float] = BACKGROUND, depth: bool = False) -> Any:
        """Render meshes (B, V, 3) in world coordinates, each through its camera.

        ``colors`` (B, 3) or (3,) floats in [0, 1] (default: ``PALETTE``).  Returns B RGBA
        images (H_i, W_i, 4) uint8 (see the module's image convention); with ``depth``, also
        B depth maps (H_i, W_i) float32: camera z in metres of the nearest surface (with
        MSAA, of one sample per pixel), ``inf`` on the background.
        """
        v, c = check_batch(vertices, cameras, colors, self.topology.num_vertices)
        depths: list[np.ndarray | None] = [None] * len(cameras)
        normals = self.topology.vertex_normals(v)
        data = np.ascontiguousarray(np.concatenate([v, normals], axis=-1), dtype=np.float32)  # (B, V, 6)
        out: list[np.ndarray | None] = [None] * len(cameras)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, cam in enumerate(cameras):
            groups.setdefault((cam.width, cam.height), []).append(i)
        ctx, prog = self.ctx, self.program
        ctx.enable(self._mgl.DEPTH_TEST)
        ctx.disable(self._mgl.CULL_FACE)
        for (w, h), items in groups.items():
            cols, rows = self._tiles(w, h, len(items))
            per = cols * rows
            fbo, resolve = self._framebuffers(cols * w, rows * h)
            for start in range(0, len(items), per):
                chunk = items[start:start + per]
                fbo.use()
                fbo.viewport = (0, 0, cols * w, rows * h)
                fbo.clear(*background, 0.0, depth=1.0)
                for k, i in enumerate(chunk):
                    cam = cameras[i]
                    fbo.viewport = ((k % cols) * w, (k // cols) * h, w, h)
                    prog["R"].write(cam.R.T.astype("f4").tobytes())  # GLSL matrices are column-major
                    prog["t"].write(cam.t.astype("f4").tobytes())
                    prog["dist"].write(cam.distortion.astype("f4").tobytes())
                    prog["limit"].value = cam.distortion_limit
                    prog["P"].write(gl_projection(cam.K, w, h).T.astype("f4").tobytes())
                    prog["color"].write(c[i].astype("f4").tobytes())
                    self.vbo.write(data[i].tobytes())
                    self.vao.render(self._mgl.TRIANGLES)
                if resolve is not fbo:
                    ctx.copy_framebuffer(resolve, fbo)
                used_rows = -(-len(chunk) // cols)
                raw = resolve.read(viewport=(0, 0, cols * w, used_rows * h), components=4, alignment=1)
                atlas = np.frombuffer(raw, dtype=np.uint8).reshape(used_rows * h, cols * w, 4)
                if depth:
                    raw = resolve.read(viewport=(0, 0, cols * w, used_rows * h), components=1, attachment=-1,
                                       dtype="f4", alignment=1)
                    d = np.frombuffer(raw, dtype=np.float32).reshape(used_rows * h, cols * w).astype(np.float64)
                    ndc = 2.0 * d - 1.0
                    z = np.where(d < 1.0, 2 * FAR * NEAR / ((FAR + NEAR) - ndc * (FAR - NEAR)), np.inf)
                for k, i in enumerate(chunk):
                    r, q = divmod(k, cols)
                    out[i] = atlas[r * h:(r + 1) * h, q * w:(q + 1) * w].copy()
                    if depth:
                        depths[i] = z[r * h:(r + 1) * h, q * w:(q + 1) * w].astype(np.float32)
        return (out, depths) if depth else out
