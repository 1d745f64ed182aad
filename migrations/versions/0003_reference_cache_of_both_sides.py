"""reference cache of both sides

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 20:39:12.192294
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('cw_ref',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('entity', sa.String(length=30), nullable=False),
    sa.Column('cw_id', sa.Integer(), nullable=False),
    sa.Column('identifier', sa.String(length=255), nullable=True),
    sa.Column('name', sa.String(length=500), nullable=True),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.Column('fetched_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cw_ref')),
    sa.UniqueConstraint('entity', 'cw_id', name='uq_cw_ref_record')
    )
    with op.batch_alter_table('cw_ref', schema=None) as batch_op:
        batch_op.create_index('ix_cw_ref_entity_identifier', ['entity', 'identifier'], unique=False)

    op.create_table('ref_fetch',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('side', sa.String(length=3), nullable=False),
    sa.Column('company_key', sa.Integer(), nullable=False),
    sa.Column('entity', sa.String(length=30), nullable=False),
    sa.Column('fetched_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ref_fetch')),
    sa.UniqueConstraint('side', 'company_key', 'entity', name='uq_ref_fetch_list')
    )
    op.create_table('qbo_ref',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('entity', sa.String(length=30), nullable=False),
    sa.Column('qbo_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=500), nullable=False),
    sa.Column('fully_qualified_name', sa.String(length=1000), nullable=True),
    sa.Column('acct_num', sa.String(length=40), nullable=True),
    sa.Column('type', sa.String(length=60), nullable=True),
    sa.Column('subtype', sa.String(length=60), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('parent_id', sa.String(length=40), nullable=True),
    sa.Column('sync_token', sa.String(length=20), nullable=True),
    sa.Column('last_updated_time', sa.String(length=40), nullable=True),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.Column('fetched_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_qbo_ref_company_id_company'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_qbo_ref')),
    sa.UniqueConstraint('company_id', 'entity', 'qbo_id', name='uq_qbo_ref_object')
    )
    with op.batch_alter_table('qbo_ref', schema=None) as batch_op:
        batch_op.create_index('ix_qbo_ref_company_entity_name', ['company_id', 'entity', 'name'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('qbo_ref', schema=None) as batch_op:
        batch_op.drop_index('ix_qbo_ref_company_entity_name')

    op.drop_table('qbo_ref')
    op.drop_table('ref_fetch')
    with op.batch_alter_table('cw_ref', schema=None) as batch_op:
        batch_op.drop_index('ix_cw_ref_entity_identifier')

    op.drop_table('cw_ref')

